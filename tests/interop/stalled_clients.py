"""Clients that send half a request and stall: what do they cost a server, and for how long?

    python3 stalled_clients.py HOST:PORT SERVER_PID N DEADLINE_SECS [MAX_BYTES_EACH]

Opens N connections to the server (127.0.0.1 only), each sending half of an upgrade
request and nothing more, in two waves. Measures the server's resident memory (VmRSS)
before and with all of them stalled, then waits for the server to answer every one
with 408 and close it by its handshake deadline (plus 5 s of slack). Fails when a
stalled connection costs more than MAX_BYTES_EACH (default 2048) of resident memory,
when one is not answered 408 and closed in time, or when the second wave makes the
server hold more than the first did (a refused client must leave nothing behind).
Bounded in count and time; stops by itself.
"""
import resource
import selectors
import socket
import sys
import time

HALF = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Up"


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wave(host, port, pid, n, deadline, max_each):
    """One wave; returns the failures, the server's memory with all stalled, and its
    memory once they are gone."""
    before = rss(pid)
    start = time.monotonic()
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.sendall(HALF)
        s.setblocking(False)
        socks.append(s)
    # A burst of connections can overflow the listen backlog, and the kernel then
    # retries a connect a second later: deadlines count from the last connect.
    connected = time.monotonic()
    time.sleep(0.5)
    stalled = rss(pid)
    each = (stalled - before) / n
    print(f"  {n} stalled clients (connected in {connected - start:.1f} s): "
          f"server RSS {before} -> {stalled} bytes, {each:.0f} bytes each")

    sel = selectors.DefaultSelector()
    replies = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        replies[s] = b""
    still_open = set(socks)
    limit = connected + deadline + 5
    while still_open and time.monotonic() < limit:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            if data:
                replies[s] += data
            else:
                sel.unregister(s)
                still_open.discard(s)
    took = time.monotonic() - connected
    answered = sum(1 for s in socks if replies[s].startswith(b"HTTP/1.1 408 "))
    for s in socks:
        s.close()
    time.sleep(0.5)
    after = rss(pid)
    print(f"  closed by the server: {n - len(still_open)} of {n} within {took:.1f} s of the "
          f"last connect, {answered} answered 408; server RSS then {after} bytes")
    bad = []
    if each > max_each:
        bad.append(f"{each:.0f} bytes per stalled client, over {max_each}")
    if still_open:
        bad.append(f"{len(still_open)} connections still open {deadline + 5:.0f} s after")
    if answered != n:
        bad.append(f"{n - answered} connections not answered 408")
    return bad, stalled, after


def main():
    addr, pid, n, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    max_each = int(sys.argv[5]) if len(sys.argv) > 5 else 2048
    host, port = addr.rsplit(":", 1)
    port = int(port)
    assert host.startswith("127."), "loopback only"
    n = min(n, 5000)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))

    # Warm the server up with a few stalls that end, so that its allocator and runtime
    # have their working set before the baseline.
    warm = [socket.create_connection((host, port)) for _ in range(50)]
    for s in warm:
        s.sendall(HALF)
        s.close()
    time.sleep(0.3)

    print("first wave:")
    bad, first_peak, _ = wave(host, port, pid, n, deadline, max_each)
    print("second wave:")
    bad2, second_peak, second_after = wave(host, port, pid, n, deadline, max_each)
    bad += bad2
    # Freed memory is reused, not necessarily returned to the system (how much the
    # allocator gives back after a wave varies): the second wave must fit in what the
    # first took, 64 bytes a client of slack for allocator noise. A client that left
    # anything behind would push the second peak up by its cost times N.
    if second_peak > first_peak + 64 * n:
        bad.append(f"the second wave took {second_peak - first_peak} bytes more than the first")
    if second_after > first_peak + 64 * n:
        bad.append(f"after the second wave the server holds {second_after} bytes, "
                   f"more than the first wave's peak {first_peak}")
    for b in bad:
        print("FAIL", b)
    sys.exit(1 if bad else 0)


main()
