# The article's sync client ("A Not-so-Speedy Sync Script"), unchanged apart from the line breaks
# the article's page lost. It calls http://localhost:8000.
import requests
from datetime import datetime


def get_time(url: str):
    resp = requests.get(url)
    result = resp.json()
    print(result)
    return result["time_elapsed"]


def main(base_url: str):
    numbers = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5]
    print(numbers)
    for num in numbers:
        get_time(base_url + f"/{num}")


if __name__ == "__main__":
    start_time = datetime.now()
    main("http://localhost:8000")
    print(datetime.now() - start_time)
