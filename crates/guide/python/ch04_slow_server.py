"""Chapter 4: the article's slow server in FastAPI.

`python3 ch04_slow_server.py [PORT]` (default 8000; 0 for a free one) prints its URL first, like
the Rust example, then serves until killed.
"""

import socket
import sys
import time

import uvicorn
from fastapi import FastAPI

app = FastAPI()  # the irony, amirite?

@app.get("/{sleep}")
def slow(sleep: int):
    time.sleep(sleep)
    return {"time_elapsed": sleep}

if __name__ == "__main__":
    # The article's `uvicorn.run(app)`, on a socket bound first so that port 0 can be reported.
    listener = socket.socket()
    listener.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
    listener.listen()  # connections wait in the queue until uvicorn accepts them
    print(f"serving http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
