"""The reference guest's Python service: an HTTP API over an in-memory SQLite database and a dict cache,
with a pool of forked worker processes and a POSIX shared-memory segment they all map.

GET /items/<n>      a row of the database (cached in a dict)
GET /sum/<n>        computed by a pool worker (a forked process)
GET /shm/<n>        a byte of the shared segment, which the workers filled
"""

import json
import multiprocessing
import multiprocessing.shared_memory as shared_memory
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROWS = 50_000
SHM_SIZE = 8 << 20

db = sqlite3.connect(":memory:", check_same_thread=False)
db.execute("create table items (id integer primary key, name text, payload blob)")
db.executemany("insert into items values (?, ?, ?)",
               ((i, f"item-{i}", i.to_bytes(8, "little") * 8) for i in range(ROWS)))
db.commit()
cache = {}
shm = shared_memory.SharedMemory(name="ptwalk-py", create=True, size=SHM_SIZE)


def fill(args):
    start, end = args
    seg = shared_memory.SharedMemory(name="ptwalk-py")
    for i in range(start, end, 4096):
        seg.buf[i] = (i >> 12) & 0xFF
    seg.close()
    return end - start


def total(n):
    return sum(i * i for i in range(n))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        try:
            n = int(parts[1])
            if parts[0] == "items":
                if n not in cache:
                    row = db.execute("select id, name, hex(payload) from items where id = ?", (n % ROWS,)).fetchone()
                    cache[n] = json.dumps({"id": row[0], "name": row[1], "payload": row[2]})
                body = cache[n]
            elif parts[0] == "sum":
                body = json.dumps({"n": n, "sum": pool.apply(total, (n,))})
            elif parts[0] == "shm":
                body = json.dumps({"n": n, "byte": shm.buf[(n * 4096) % SHM_SIZE]})
            else:
                raise ValueError(parts[0])
        except (ValueError, IndexError) as e:
            self.send_error(404, str(e))
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    pool = multiprocessing.Pool(2)
    pool.map(fill, [(i, min(i + (1 << 20), SHM_SIZE)) for i in range(0, SHM_SIZE, 1 << 20)])
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"service: {ROWS} rows, {SHM_SIZE >> 20} MiB shared segment, listening on {port}", flush=True)
    server.serve_forever()
