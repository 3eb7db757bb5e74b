using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Runs;

/// <summary>Whether the hand-written CPU kernels run where they apply, or every method runs its plain tensor form.</summary>
public enum KernelChoice
{
    /// <summary>The kernels of <c>src/RecDistill/Kernels</c> where they support the tensors at hand (the default).</summary>
    Accelerated,
    /// <summary>libtorch operations only: each method's formula as written (for A/B runs and checks).</summary>
    Plain,
}

/// <summary>Where tensor work runs: "cpu" or "cuda" (or "cuda:N"), how many CPU threads libtorch uses, and whether kernels run.</summary>
public sealed record ComputeOptions(string Device = "cpu", int? Threads = null)
{
    public static ComputeOptions Cpu { get; } = new();

    /// <summary>Hand-written kernels or plain tensor forms; both give the same results up to float rounding.</summary>
    public KernelChoice Kernels { get; init; } = KernelChoice.Accelerated;

    /// <summary>
    /// Call first thing in a program, before anything loads libtorch: its OpenMP workers sleep when idle
    /// (unless OMP_WAIT_POLICY says otherwise), and denormal floats are flushed to zero on this thread and
    /// so on the threads it starts (libtorch's workers).
    /// </summary>
    public static void PrepareProcess()
    {
        ThreadTuning.PreferSleepingWorkers();
        DenormalFlush.OnThisThread();
    }

    /// <summary>Sets libtorch's threads and returns the device; a libtorch that cannot load or a missing GPU is a <see cref="UserErrorException"/>.</summary>
    internal Device Resolve()
    {
        AllocatorTuning.KeepFreedMemory();
        try
        {
            torch.set_num_threads(Threads ?? Environment.ProcessorCount);
        }
        catch (TypeInitializationException e) when (e.TypeName == typeof(torch).FullName)
        {
            throw new UserErrorException(LibTorchNotLoaded(e.InnerException ?? e));
        }
        var d = Device.ToLowerInvariant();
        if (d.StartsWith("cuda", StringComparison.Ordinal) && !torch.cuda.is_available())
            throw new UserErrorException("--device cuda: no CUDA device is available to this build. Reference a CUDA build of libtorch instead of libtorch-cpu-linux-x64, or build with -p:LibTorch=external and put a CUDA libtorch (an installed PyTorch's torch/lib) on LD_LIBRARY_PATH (docs/torchsharp.md); and check the driver.");
        return torch.device(d);
    }

    /// <summary>Why libtorch did not load, and what to do, for this build's choice of libtorch (-p:LibTorch=cpu|external).</summary>
    public static string LibTorchNotLoaded(Exception cause)
    {
        string choice = typeof(ComputeOptions).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "RecDistill.LibTorch")?.Value ?? "cpu";
        string reason = cause.Message.Split('\n', 2)[0].Trim();
        return choice == "external"
            ? $"libtorch could not be loaded ({reason}). This build leaves libtorch out (-p:LibTorch=external): put the folder " +
              "that holds libtorch_cpu.so on LD_LIBRARY_PATH, for a GPU an installed PyTorch's torch/lib and its nvidia/*/lib " +
              "folders (docs/torchsharp.md)."
            : $"libtorch could not be loaded ({reason}). The application must carry libtorch: reference libtorch-cpu-linux-x64 " +
              "(or a CUDA build of libtorch) and rebuild so that its files are in the output directory (docs/torchsharp.md).";
    }
}
