"""Chapter 4: how many `def` endpoints FastAPI runs at once. Starlette runs them with
`anyio.to_thread.run_sync`, whose default limiter holds this many tokens, one per thread."""

import anyio
import anyio.to_thread


async def main():
    limiter = anyio.to_thread.current_default_thread_limiter()
    print(f"anyio's default thread limiter: {limiter.total_tokens} tokens")

anyio.run(main)
