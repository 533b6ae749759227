"""Chapter 5: the article's sync client (requests). `python3 ch05_sync_client.py BASE_URL`;
`SLOWLAB_GUIDE_SCALE` scales the delays, as it does for the Rust examples."""

import os
import sys
from datetime import datetime

import requests

SCALE = float(os.environ.get("SLOWLAB_GUIDE_SCALE", "1"))


def get_time(url: str):
    resp = requests.get(url)
    result = resp.json()
    print(result)
    return result["time_elapsed"]

def main(base_url: str):
    numbers = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5]
    print(numbers)
    start_time = datetime.now()
    for num in numbers:
        get_time(base_url + f"/{round(num * SCALE, 3)}")
    print(datetime.now() - start_time)

if __name__ == "__main__":
    main(sys.argv[1])
