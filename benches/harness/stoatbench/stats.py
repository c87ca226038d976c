"""Medians and per-pair ratios."""


def median(xs):
    s = sorted(xs)
    if not s:
        return None
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def ratio(stoat, peer):
    """stoat / peer; None when either is missing or the peer is zero."""
    if stoat is None or peer is None or peer == 0:
        return None
    return stoat / peer


def pair_ratios(pairs):
    """[(stoat, peer)] -> {median, min, max} of the per-pair ratios stoat / peer."""
    rs = [r for r in (ratio(a, b) for a, b in pairs) if r is not None]
    if not rs:
        return None
    return {"median": median(rs), "min": min(rs), "max": max(rs), "n": len(rs)}
