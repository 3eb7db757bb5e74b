using System.Runtime.CompilerServices;
using TorchSharp;

namespace RecDistill.Kernels;

/// <summary>
/// Runs a per-row CPU kernel over [0, rows) in fixed chunks, in parallel up to libtorch's thread
/// setting (`--threads`) plus any threads lent to the calling thread (<see cref="LentThreads"/>).
/// Each row is handled by exactly one call, so results do not depend on the thread count. A run
/// inside another run's chunk stays on that chunk's thread; <see cref="RunPieces"/> runs pieces of
/// unequal cost (experts, HTD's groups).
/// </summary>
internal static class RowChunks
{
    [ThreadStatic] private static bool t_inChunk;

    /// <summary>
    /// Runs body(i) for pieces 0 .. costs.Length - 1 of the given costs (one call each), the costliest
    /// first. A piece that costs more than all the pieces after it shared among the threads runs
    /// alone first, its own loops on all the threads; the rest run side by side, one thread each.
    /// Why: late in a run most rows go to two or three experts (and HTD's groups), and one piece taken
    /// last, or run on one thread while the others wait, sets the pace.
    /// </summary>
    public static void RunPieces(long[] costs, Action<int> body)
    {
        DenormalFlush.OnThisThread(); // a piece run alone computes as Run's chunks do
        var order = LargestFirst(costs);
        int threads = t_inChunk ? 1 : LentThreads.OwnThreads + LentThreads.Available;
        long rest = costs.Sum();
        int alone = 0;
        for (; alone < order.Length && threads > 1; alone++)
        {
            long cost = costs[order[alone]];
            if (cost * threads <= rest) break;
            body(order[alone]);
            rest -= cost;
        }
        int first = alone;
        Run(order.Length - first, 1, (from, to) => { for (int i = from; i < to; i++) body(order[first + i]); });
    }

    /// <summary>Indices of the costs, largest first, ties by index.</summary>
    internal static int[] LargestFirst(long[] costs)
    {
        var order = Enumerable.Range(0, costs.Length).ToArray();
        Array.Sort(order, (a, b) => costs[a] != costs[b] ? costs[b].CompareTo(costs[a]) : a.CompareTo(b));
        return order;
    }

    public static void Run(int rows, int chunk, Action<int, int> body)
    {
        DenormalFlush.OnThisThread();
        int chunks = (rows + chunk - 1) / chunk;
        // Inside another run's chunk (an expert's or a group's products) the threads are busy with the
        // outer run's chunks: a nested parallel loop would only queue work behind them.
        if (chunks <= 1 || t_inChunk) { body(0, rows); return; }
        void Chunk(int c)
        {
            DenormalFlush.OnThisThread(); // thread-pool threads compute as the caller does
            bool outer = t_inChunk;
            t_inChunk = true;
            try { body(c * chunk, Math.Min(rows, (c + 1) * chunk)); }
            finally { t_inChunk = outer; }
        }
        int threads = LentThreads.OwnThreads + LentThreads.Available;
        if (threads > 1)
        {
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, Chunk);
            return;
        }
        if (!LentThreads.MayBorrow) { body(0, rows); return; }
        // One thread for now, but a thread may be lent before the chunks are done: run them one by
        // one and hand the rest to a helper as soon as one is.
        int next = 0;
        void Drain()
        {
            int c;
            while ((c = Interlocked.Increment(ref next) - 1) < chunks) Chunk(c);
        }
        Task? helper = null;
        int mine;
        while ((mine = Interlocked.Increment(ref next) - 1) < chunks)
        {
            Chunk(mine);
            if (helper is null && Volatile.Read(ref next) < chunks - 1 && LentThreads.Available > 0)
                helper = Task.Run(() => { using var _ = LentThreads.AsHelper(); Drain(); });
        }
        helper?.Wait();
    }
}

/// <summary>
/// Threads that others have lent to the calling thread's kernels: loss-term lanes that have run
/// their terms lend their cores to the lanes still running (see Training.LossTermLanes), so that a
/// long term does not run on one core while the other idles. Only <see cref="RowChunks"/> uses them;
/// its results do not depend on the thread count.
/// </summary>
internal static class LentThreads
{
    [ThreadStatic] private static StrongBox<int>? _pool;
    [ThreadStatic] private static int _ownThreads;   // 0: libtorch's setting

    /// <summary>How many threads the calling thread may use beyond its own now.</summary>
    internal static int Available => _pool is { } p ? Volatile.Read(ref p.Value) : 0;

    /// <summary>Whether the calling thread may be lent threads (it runs in a lane).</summary>
    internal static bool MayBorrow => _pool is not null;

    /// <summary>The calling thread's own threads for kernels: its lane's share, else libtorch's setting.</summary>
    internal static int OwnThreads => _ownThreads > 0 ? _ownThreads : Math.Max(1, torch.get_num_threads());

    /// <summary>
    /// Until disposed, the calling thread runs kernels on <paramref name="ownThreads"/> threads plus those
    /// counted in <paramref name="pool"/>.
    /// </summary>
    internal static IDisposable Use(StrongBox<int> pool, int ownThreads)
    {
        var restore = new Restore(_pool, _ownThreads);
        _pool = pool;
        _ownThreads = ownThreads;
        return restore;
    }

    /// <summary>A helper running on a lent thread: one thread, nothing more to borrow.</summary>
    internal static IDisposable AsHelper()
    {
        var restore = new Restore(_pool, _ownThreads);
        _pool = null;
        _ownThreads = 1;
        return restore;
    }

    private sealed class Restore(StrongBox<int>? pool, int ownThreads) : IDisposable
    {
        public void Dispose() { _pool = pool; _ownThreads = ownThreads; }
    }
}
