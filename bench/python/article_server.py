# The article's slow server, as printed ("A Quick, Slow Server"): a `def` endpoint that blocks in
# time.sleep, so FastAPI runs it on its 40-thread pool. `python article_server.py` serves
# http://127.0.0.1:8000 like the article; bench/run starts it with `python -m uvicorn
# article_server:app --port P` instead, to choose the port.
import time
import uvicorn
from fastapi import FastAPI

app = FastAPI()  # the irony, amirite?


@app.get("/{sleep}")
def slow(sleep: int):
    time.sleep(sleep)
    return {"time_elapsed": sleep}


if __name__ == "__main__":
    uvicorn.run(app)  # uvicorn is a server built with uvloop, an asynchronous event loop!
