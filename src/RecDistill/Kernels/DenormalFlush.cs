using System.Runtime.InteropServices;

namespace RecDistill.Kernels;

/// <summary>
/// Flush-to-zero and denormals-are-zero (the FTZ and DAZ bits of x86's MXCSR) for the calling thread:
/// float results below 1.2e-38 become 0, and such inputs read as 0. On Intel CPUs an operation with a
/// denormal operand or result takes a microcode assist of about a hundred cycles: as the expert
/// selection's temperature anneals, the Gumbel-softmax probabilities of the experts not chosen sink
/// below that range, and MKD's epochs on an Intel Xeon grew from 3.5 s to 8 s from epoch 30 on
/// (CiteULike, BPR student d=20). AMD's cores handle most of these without such a penalty, which may
/// be why it did not show on the earlier machines. Values that reach
/// the denormal range are below anything the losses and metrics can see. The setting is per thread:
/// call <see cref="OnThisThread"/> on every thread that computes (the trainer, the loss-term lanes and
/// <see cref="RowChunks"/> do); threads created afterwards by a thread that has it inherit it
/// (libtorch's OpenMP workers, when it is set before the first tensor call).
/// </summary>
internal static unsafe class DenormalFlush
{
    private const uint FlushToZero = 1u << 15, DenormalsAreZero = 1u << 6;
    // glibc's x86-64 fenv_t: 32 bytes, MXCSR at byte 28.
    private const int EnvironmentSize = 32, MxcsrOffset = 28;

    [ThreadStatic] private static bool _done;

    [DllImport("libm.so.6", EntryPoint = "fegetenv")]
    private static extern int GetEnvironment(byte* environment);

    [DllImport("libm.so.6", EntryPoint = "fesetenv")]
    private static extern int SetEnvironment(byte* environment);

    /// <summary>Whether the platform has the setting (x86-64 Linux with glibc).</summary>
    public static bool IsSupported { get; } = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <summary>Sets FTZ and DAZ on the calling thread once (later calls on the same thread cost a flag check).</summary>
    public static void OnThisThread()
    {
        if (_done) return;
        _done = true;
        if (!IsSupported) return;
        try
        {
            byte* environment = stackalloc byte[EnvironmentSize];
            if (GetEnvironment(environment) != 0) return;
            *(uint*)(environment + MxcsrOffset) |= FlushToZero | DenormalsAreZero;
            SetEnvironment(environment);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    /// <summary>Whether denormal inputs read as zero on the calling thread now (for tests and diagnostics).</summary>
    public static bool ActiveOnThisThread()
    {
        // The smallest positive denormal, through a volatile read so that the JIT cannot fold the product.
        float tiny = Volatile.Read(ref _smallestDenormal);
        return tiny * 2f == 0f;
    }

    private static float _smallestDenormal = BitConverter.Int32BitsToSingle(1);
}
