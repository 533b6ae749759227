"""Chapter 2: the coroutine that was never awaited. Calling an `async def` runs none of its body;
Python warns (on stderr) when the coroutine object is collected."""

from ch02_async_await import get_stuff_async

print(get_stuff_async())
