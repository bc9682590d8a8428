"""This process's peak resident memory (Linux), for tests that nothing of size n is
materialised on a dask client."""


def clear_peak_rss():
    """Reset this process's peak resident size (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes():
    """This process's peak resident size since the last reset, in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")
