"""Chapter 2: the article's first async program, as the chapter shows it."""

import asyncio


async def some_long_operation():
    return {"key": "The Emperor's Wayfinder is in the Imperial Vault"}

async def get_stuff_async():
    results = await some_long_operation()
    return results["key"]

if __name__ == "__main__":
    results = asyncio.run(get_stuff_async())  # "asyncio.run is like top-level `await`"
    print(results)
