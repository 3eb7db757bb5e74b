using System.Runtime.InteropServices;

namespace RecDistill.Kernels;

/// <summary>
/// Makes glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.
/// libtorch allocates fresh tensors on every step; by default blocks of a few MB are mmap'ed and
/// unmapped each time, so every step pays page faults on new memory. On our 2-core VM a page fault
/// costs tens of microseconds (measured with bench/profile-distillation.cs, with and without: SLD's
/// per-epoch step 3-5x faster, KD's 10x, an MKD epoch 1.3-1.7x). Values and results do not change.
/// </summary>
internal static class AllocatorTuning
{
    private const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3; // mallopt parameters (malloc.h)
    private static readonly Lazy<bool> Applied = new(Apply);

    [DllImport("libc.so.6", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    /// <summary>
    /// Blocks up to 32 MB (glibc's maximum) come from the heap, freed memory is kept (trimmed only
    /// beyond 2 GB), and the heap grows in steps of 256 MB. Returns false where it does not apply
    /// (not Linux, not glibc). Safe to call more than once; the process keeps its peak memory.
    /// </summary>
    public static bool KeepFreedMemory() => Applied.Value;

    private static bool Apply()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return (MallOpt(MmapThreshold, 32 << 20) & MallOpt(TrimThreshold, int.MaxValue) & MallOpt(TopPad, 256 << 20)) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
