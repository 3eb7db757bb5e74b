using System.Runtime.CompilerServices;
using TorchSharp;

namespace RecDistill;

/// <summary>
/// Runs a per-row CPU kernel over [0, rows) in fixed chunks, in parallel up to libtorch's thread
/// setting (`--threads`) plus any threads lent to the calling thread (<see cref="LentThreads"/>).
/// Each row is handled by exactly one call, so results do not depend on the thread count.
/// </summary>
internal static class RowChunks
{
    public static void Run(int rows, int chunk, Action<int, int> body)
    {
        int threads = Math.Max(1, torch.get_num_threads()) + LentThreads.Available;
        if (threads == 1 || rows <= chunk) { body(0, rows); return; }
        Parallel.For(0, (rows + chunk - 1) / chunk, new ParallelOptions { MaxDegreeOfParallelism = threads },
            c => body(c * chunk, Math.Min(rows, (c + 1) * chunk)));
    }
}

/// <summary>
/// Threads that others have lent to the calling thread's kernels: loss-term lanes that have run
/// their terms lend their cores to the lanes still running (see Training.LossTermLanes), so that a
/// long term does not run on one core while the other idles. Only <see cref="RowChunks"/> uses them;
/// its results do not depend on the thread count.
/// </summary>
public static class LentThreads
{
    [ThreadStatic] private static StrongBox<int>? _pool;

    /// <summary>How many threads the calling thread may use beyond its own now.</summary>
    public static int Available => _pool is { } p ? Volatile.Read(ref p.Value) : 0;

    /// <summary>Until disposed, the calling thread may use the threads counted in <paramref name="pool"/>.</summary>
    public static IDisposable Use(StrongBox<int> pool)
    {
        var before = _pool;
        _pool = pool;
        return new Restore(before);
    }

    private sealed class Restore(StrongBox<int>? before) : IDisposable
    {
        public void Dispose() => _pool = before;
    }
}
