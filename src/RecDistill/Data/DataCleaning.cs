namespace RecDistill.Data;

/// <summary>Outcome of <see cref="DataCleaning.KCore"/>: surviving rows (original order) and what was dropped.</summary>
public sealed record KCoreResult(List<RawInteraction> Rows, int RemovedUsers, int RemovedItems, int RemovedPairs, int Rounds);

/// <summary>Cleaning steps applied before splitting; each keeps the order of the rows it keeps.</summary>
public static class DataCleaning
{
    /// <summary>Keeps rows with rating &gt;= <paramref name="threshold"/>; rows without a rating count as positive. Null threshold keeps all.</summary>
    public static List<RawInteraction> KeepPositive(IReadOnlyList<RawInteraction> rows, float? threshold, out int removed)
    {
        var kept = new List<RawInteraction>(rows.Count);
        foreach (var r in rows)
            if (threshold is null || r.Rating is null || r.Rating.Value >= threshold.Value)
                kept.Add(r);
        removed = rows.Count - kept.Count;
        return kept;
    }

    /// <summary>Drops repeated (user, item) pairs, keeping the first occurrence.</summary>
    public static List<RawInteraction> RemoveDuplicates(IReadOnlyList<RawInteraction> rows, out int removed)
    {
        var seen = new HashSet<(string, string)>(rows.Count);
        var kept = new List<RawInteraction>(rows.Count);
        foreach (var r in rows)
            if (seen.Add((r.User, r.Item)))
                kept.Add(r);
        removed = rows.Count - kept.Count;
        return kept;
    }

    /// <summary>
    /// Iterative k-core: removes users with fewer than <paramref name="minUser"/> interactions and items with fewer
    /// than <paramref name="minItem"/>, repeating until nothing changes (removing items can push users below the bar).
    /// </summary>
    public static KCoreResult KCore(IReadOnlyList<RawInteraction> rows, int minUser, int minItem)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minUser);
        ArgumentOutOfRangeException.ThrowIfNegative(minItem);
        int n = rows.Count;
        var userIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var itemIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var u = new int[n];
        var it = new int[n];
        for (int k = 0; k < n; k++)
        {
            u[k] = IndexOf(userIndex, rows[k].User);
            it[k] = IndexOf(itemIndex, rows[k].Item);
        }
        var userDeg = new int[userIndex.Count];
        var itemDeg = new int[itemIndex.Count];
        for (int k = 0; k < n; k++) { userDeg[u[k]]++; itemDeg[it[k]]++; }

        var alive = new bool[n];
        Array.Fill(alive, true);
        int rounds = 0, removedPairs = 0;
        while (true)
        {
            // Decide the whole round from the degrees at its start; the fixed point does not depend on the order.
            var dropUser = new bool[userDeg.Length];
            var dropItem = new bool[itemDeg.Length];
            bool any = false;
            for (int x = 0; x < userDeg.Length; x++)
                if (userDeg[x] > 0 && userDeg[x] < minUser) { dropUser[x] = true; any = true; }
            for (int x = 0; x < itemDeg.Length; x++)
                if (itemDeg[x] > 0 && itemDeg[x] < minItem) { dropItem[x] = true; any = true; }
            if (!any) break;
            rounds++;
            for (int k = 0; k < n; k++)
            {
                if (!alive[k] || !(dropUser[u[k]] || dropItem[it[k]])) continue;
                alive[k] = false;
                removedPairs++;
                userDeg[u[k]]--;
                itemDeg[it[k]]--;
            }
        }

        var kept = new List<RawInteraction>(n - removedPairs);
        for (int k = 0; k < n; k++)
            if (alive[k]) kept.Add(rows[k]);
        int removedUsers = userDeg.Count(d => d == 0);
        int removedItems = itemDeg.Count(d => d == 0);
        return new KCoreResult(kept, removedUsers, removedItems, removedPairs, rounds);
    }

    private static int IndexOf(Dictionary<string, int> index, string raw)
    {
        if (!index.TryGetValue(raw, out int id))
        {
            id = index.Count;
            index[raw] = id;
        }
        return id;
    }
}
