# The article's server with an `async def` endpoint and asyncio.sleep: the wait is a timer on the
# event loop instead of a thread from the pool. Not in the article; the fair Python peer for an
# async Rust server.
import asyncio
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/{sleep}")
async def slow(sleep: int):
    await asyncio.sleep(sleep)
    return {"time_elapsed": sleep}


if __name__ == "__main__":
    uvicorn.run(app)
