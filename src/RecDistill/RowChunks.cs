using TorchSharp;

namespace RecDistill;

/// <summary>
/// Runs a per-row CPU kernel over [0, rows) in fixed chunks, in parallel up to libtorch's thread
/// setting (`--threads`). Each row is handled by exactly one call, so results do not depend on
/// the thread count.
/// </summary>
internal static class RowChunks
{
    public static void Run(int rows, int chunk, Action<int, int> body)
    {
        int threads = Math.Max(1, torch.get_num_threads());
        if (threads == 1 || rows <= chunk) { body(0, rows); return; }
        Parallel.For(0, (rows + chunk - 1) / chunk, new ParallelOptions { MaxDegreeOfParallelism = threads },
            c => body(c * chunk, Math.Min(rows, (c + 1) * chunk)));
    }
}
