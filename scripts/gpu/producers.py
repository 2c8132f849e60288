"""Batch producers of the GPU trainers: Node processes (bundled scripts/gpu/*-batches.ts) that write
fixed-size binary records to stdout; one reader thread per process parses them into one queue."""
import queue
import subprocess
import sys
import threading


class Producers:
    """`commands`: one argv per process; `record`: bytes per record; `parse(bytes)`: a record's arrays."""

    def __init__(self, commands, record, parse, depth=256):
        self.record, self.parse = record, parse
        self.queue = queue.Queue(maxsize=depth)
        self.procs = []
        self.failed = []
        for cmd in commands:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, bufsize=0)
            self.procs.append(p)
            threading.Thread(target=self._read, args=(p,), daemon=True).start()

    def _read(self, p):
        while True:
            buf = bytearray()
            while len(buf) < self.record:
                part = p.stdout.read(self.record - len(buf))
                if not part:
                    if p.wait() != 0:
                        self.failed.append(p.returncode)
                    self.queue.put(None)
                    return
                buf += part
            self.queue.put(self.parse(bytes(buf)))

    def take(self, count):
        recs = []
        while len(recs) < count:
            r = self.queue.get()
            if r is None:
                raise SystemExit(f'a batch producer ended (exit codes {self.failed})')
            recs.append(r)
        return recs

    def drain(self):
        """Every record until all processes have ended (a finite `holdout` stream)."""
        recs, ended = [], 0
        while ended < len(self.procs):
            r = self.queue.get()
            if r is None:
                ended += 1
            else:
                recs.append(r)
        if self.failed:
            raise SystemExit(f'a batch producer failed (exit codes {self.failed})')
        return recs

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
