"""Plain-socket ends for scenario 9's byte-level measurements, run on threads of the harness: a
server that sends a block of bytes to every connection, a client that times reading one to its
end, an HTTP/1.1 sink that reads a body of any size and answers how many bytes it read, and an
uploader that streams a body from one reused buffer. None of them keeps what passes through, so
the proxy between them is the only process whose memory can grow with the bytes. Standard
library only."""

import socket
import threading
import time

CHUNK = 1 << 20  # 1 MiB: what each end reads or writes at a time


class _Listener:
    """A loopback listener whose connections are each handled on a thread of their own, until
    `close()` (or the end of a `with` block)."""

    def __init__(self):
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        raise NotImplementedError

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BlockServer(_Listener):
    """Sends `size` zero bytes to every connection in one go, then closes its sending half and
    reads until the other side closes. A readiness probe's connection, closed at once, only ends
    its own thread."""

    def __init__(self, size):
        self._block = bytes(size)
        super().__init__()

    def _serve(self, conn):
        with conn:
            try:
                conn.sendall(self._block)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except OSError:
                pass


def timed_read(port, timeout=120):
    """Connects to `port` and reads to the end of the stream; returns (bytes, seconds from before
    the connect to the end)."""
    start = time.perf_counter()
    got = 0
    buf = bytearray(CHUNK)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        while n := s.recv_into(buf):
            got += n
    return got, time.perf_counter() - start


class CountingSink(_Listener):
    """An HTTP/1.1 server that reads each request's Content-Length body to its end into one
    reused buffer, keeping nothing, and answers 200 with the number of body bytes it read.
    `counted` is the count of the last request."""

    def __init__(self):
        self.counted = None
        super().__init__()

    def _serve(self, conn):
        with conn:
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    more = conn.recv(4096)
                    if not more:
                        return
                    head += more
                head, _, rest = head.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                read = len(rest)
                buf = bytearray(CHUNK)
                while read < length:
                    n = conn.recv_into(buf)
                    if not n:
                        break
                    read += n
                self.counted = read
                body = str(read).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                             % len(body) + body)
            except (OSError, ValueError):
                pass


def upload(port, size, path="/upload", timeout=300):
    """POSTs a body of `size` bytes to `port` with Content-Length, written 1 MiB at a time from one
    buffer (the last write shorter); returns (the answer's status, its body, seconds from the
    connect to the end of the answer)."""
    start = time.perf_counter()
    chunk = b"u" * CHUNK
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: upload\r\nContent-Length: {size}\r\n"
                  "Connection: close\r\n\r\n".encode())
        left = size
        while left:
            n = min(left, CHUNK)
            s.sendall(chunk if n == CHUNK else chunk[:n])
            left -= n
        answer = b""
        while more := s.recv(65536):
            answer += more
    seconds = time.perf_counter() - start
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return status, body.decode(errors="replace"), seconds
