namespace PodBridge.Ipam;

/// <summary>
/// The allocation strategy, and nothing else (host-local's allocator.go): round-robin over a range set.
/// The walk starts right after the set's cursor (the last address handed out), runs to the end of that range,
/// through the following ranges, wraps to the first, and ends at the cursor itself, so a released address is
/// reused only after everything else has been tried. Each range is searched through the store's ordered
/// address index for the first gap, so the cost is the length of the held run after the cursor, never the
/// size of the range (a /64 is two numbers) nor the number of leases.
/// </summary>
public sealed class RangeAllocator(ILeaseTransaction tx, string network)
{
    /// <summary>The next free address of the set and the range it is in, or null when every address is held.</summary>
    public (IpAddr Address, IpRange Range)? FindFree(RangeSet set)
    {
        var ranges = set.Ranges;
        var first = 0;
        IpAddr? cursor = null;
        if (tx.GetCursor(network, set.Index) is { } c)
            for (var i = 0; i < ranges.Count; i++)
                if (ranges[i].Contains(c)) { first = i; cursor = c; break; }

        if (cursor is { } after)
        {
            var r = ranges[first];
            if (after < r.End && FirstGap(r, after.Add(1), r.End) is { } a) return (a, r);
            for (var k = 1; k < ranges.Count; k++)
            {
                var next = ranges[(first + k) % ranges.Count];
                if (FirstGap(next, next.Start, next.End) is { } b) return (b, next);
            }
            return FirstGap(r, r.Start, after) is { } w ? (w, r) : null;
        }

        foreach (var r in ranges)
            if (FirstGap(r, r.Start, r.End) is { } a) return (a, r);
        return null;
    }

    /// <summary>The lowest address in [lo, hi] that is neither held nor the range's gateway.</summary>
    internal IpAddr? FirstGap(IpRange range, IpAddr lo, IpAddr hi)
    {
        var candidate = lo;
        // Stepping with an explicit "reached hi" check: hi may be the family's last address (v6 ffff:...:ffff),
        // where candidate + 1 would wrap to zero.
        bool Step()
        {
            if (candidate == hi) return false;
            candidate = candidate.Add(1);
            return true;
        }

        if (candidate == range.Gateway && !Step()) return null;
        foreach (var held in tx.Held(network, candidate, hi))
        {
            if (held < candidate) continue; // e.g. a gateway that was leased before the config changed
            if (held > candidate) return candidate;
            if (!Step()) return null;
            if (candidate == range.Gateway && !Step()) return null;
        }
        return candidate;
    }
}
