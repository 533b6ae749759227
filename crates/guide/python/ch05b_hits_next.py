"""Chapter 5b beside Rust: the asyncio program that examples/ch05b_hits_next.rs mirrors.

A task of its own (asyncio.create_task), state shared by tasks, a worker pool fed by an
asyncio.Queue and answering on futures, and the first of two (asyncio.wait FIRST_COMPLETED).
It prints the same lines as the Rust program. Run it with python3; SLOWLAB_GUIDE_SCALE scales
its delays as it does the examples'.
"""

import asyncio
import os
import time

SCALE = float(os.environ.get("SLOWLAB_GUIDE_SCALE", "1"))


def seconds_since(start):
    """Seconds since start, in the article's seconds (unscaled)."""
    return (time.monotonic() - start) / SCALE


async def cook(dish, seconds):
    await asyncio.sleep(seconds * SCALE)
    return dish


async def main():
    # 1. A task of its own. Nothing is moved: the task sees `dish` through the closure.
    start = time.monotonic()
    dish = "eggs"

    async def eggs_done():
        await asyncio.sleep(1.0 * SCALE)
        return f"{dish} done"

    done = await asyncio.create_task(eggs_done())
    print(f"spawn: {done} after {seconds_since(start):.1f} s")

    # 2. State shared by tasks: a plain list. One thread, and no await inside the append, so
    #    no other task can run in the middle of it: no lock needed.
    start = time.monotonic()
    cooked = []

    async def cook_into(dish, seconds):
        cooked.append(await cook(dish, seconds))

    await asyncio.gather(
        *(cook_into(dish, s) for dish, s in [("toast", 3.0), ("eggs", 2.0), ("bacon", 1.0)])
    )
    print(f"shared list: {', '.join(cooked)} after {seconds_since(start):.1f} s")

    # 3. A worker pool. asyncio.Queue has any number of consumers, so the workers share it as
    #    it is; each answer comes back on its order's future.
    queue = asyncio.Queue()

    async def worker(number):
        while True:
            order = await queue.get()
            if order is None:  # no more orders
                return
            dish, seconds, ordered, reply = order
            dish = await cook(dish, seconds)
            after = seconds_since(ordered)
            reply.set_result(f"{dish} by worker {number}, ready {after:.1f} s after ordering")

    workers = [asyncio.create_task(worker(number)) for number in [1, 2]]
    start = time.monotonic()
    answers = []
    for dish, seconds in [("toast", 3.0), ("eggs", 1.0), ("bacon", 1.0)]:
        reply = asyncio.get_running_loop().create_future()
        queue.put_nowait((dish, seconds, time.monotonic(), reply))
        answers.append(reply)
    for _ in workers:
        queue.put_nowait(None)
    for answer in answers:
        print(f"pool: {await answer}")
    print(f"pool: 3 orders, 2 workers, all answered after {seconds_since(start):.1f} s")

    # 4. The first of two: wait for the first to finish, then cancel the other.
    start = time.monotonic()
    coffee = asyncio.create_task(cook("coffee", 2.0))
    tea = asyncio.create_task(cook("tea", 1.0))
    done, pending = await asyncio.wait({coffee, tea}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    first = done.pop().result()
    print(f"select: {first} first, after {seconds_since(start):.1f} s, the other stopped")


if __name__ == "__main__":
    asyncio.run(main())
