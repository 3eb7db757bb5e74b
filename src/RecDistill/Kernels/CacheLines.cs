namespace RecDistill.Kernels;

/// <summary>
/// Asks the CPU to bring a row of floats into the caches ahead of use. Kernels that visit rows
/// scattered over a table larger than the caches (the optimizer's touched rows, NKD's teacher
/// neighbours) use it for the next rows: the hardware prefetcher follows a row but not the jump to
/// the next one. A no-op without SSE.
/// </summary>
internal static unsafe class CacheLines
{
    public static void PrefetchRow(float* row, int floats)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        byte* start = (byte*)row;
        for (long o = 0; o < (long)floats * sizeof(float); o += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch0(start + o);
    }
}
