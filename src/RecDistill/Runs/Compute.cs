using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Runs;

/// <summary>
/// Which hand-written CPU kernels run where they apply; the others leave their work to the plain
/// tensor form (libtorch operations: each method's formula as written). Both give the same results
/// up to float rounding. Text form: "accelerated", "plain", or "plain:NAME,NAME" for some kernels only.
/// </summary>
public sealed record KernelChoice
{
    /// <summary>The kernels by name (docs/performance.md says what each does and what it gains).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["sgemm", "list-scores", "nkd-loss", "htd-loss", "graph-propagation"];

    /// <summary>Every kernel where it applies (the default).</summary>
    public static KernelChoice Accelerated { get; } = new(Array.Empty<string>());

    /// <summary>No kernel: libtorch operations only.</summary>
    public static KernelChoice Plain { get; } = new(Names);

    private KernelChoice(IEnumerable<string> plain) => PlainKernels = plain.ToHashSet(StringComparer.Ordinal);

    /// <summary>The kernels left out.</summary>
    public IReadOnlySet<string> PlainKernels { get; }

    /// <summary>Every kernel but <paramref name="names"/> (for an A/B run of one kernel).</summary>
    public static KernelChoice PlainFor(IEnumerable<string> names)
    {
        var list = names.Select(n => n.Trim().ToLowerInvariant()).ToList();
        foreach (var n in list)
            if (!Names.Contains(n)) throw new ArgumentException($"'{n}' is not a kernel: use {string.Join(", ", Names)}");
        return list.Count == 0 ? Accelerated : new KernelChoice(list);
    }

    /// <summary>"accelerated", "plain" or "plain:NAME[,NAME...]"; an <see cref="ArgumentException"/> says what is wrong.</summary>
    public static KernelChoice Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "accelerated") return Accelerated;
        if (t == "plain") return Plain;
        if (t.StartsWith("plain:", StringComparison.Ordinal))
            return PlainFor(t["plain:".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries));
        throw new ArgumentException($"'{text}' is not accelerated, plain or plain:NAME[,NAME] (kernels: {string.Join(", ", Names)})");
    }

    /// <summary>Whether the named kernel runs (it is not among <see cref="PlainKernels"/>).</summary>
    public bool Uses(string kernel) => !PlainKernels.Contains(kernel);

    /// <summary>The choice in <see cref="Parse"/>'s form: "accelerated", "plain" or "plain:NAME,...".</summary>
    public override string ToString() =>
        PlainKernels.Count == 0 ? "accelerated"
        : PlainKernels.Count == Names.Count ? "plain"
        : "plain:" + string.Join(",", Names.Where(PlainKernels.Contains));
}

/// <summary>
/// Where tensor work runs: "cpu" or "cuda" (or "cuda:N"), how many CPU threads libtorch uses (at least 1;
/// default: <see cref="Environment.ProcessorCount"/>), and whether kernels run.
/// </summary>
public sealed record ComputeOptions(string Device = "cpu", int? Threads = null)
{
    /// <summary>The CPU with one libtorch thread per processor (<see cref="Environment.ProcessorCount"/>).</summary>
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

    /// <summary>
    /// Throws a <see cref="UserErrorException"/> for a thread count below 1 or a device that is neither
    /// cpu nor cuda[:N]; loads nothing, so a workflow checks this before it writes anything.
    /// </summary>
    internal void Validate()
    {
        // libtorch aborts the process on set_num_threads(0 or less), which .NET cannot catch.
        if (Threads is < 1) throw new UserErrorException($"threads {Threads}: libtorch needs at least 1 thread (ComputeOptions.Threads)");
        var d = Device.ToLowerInvariant();
        bool known = d == "cpu" || d == "cuda" || (d.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(d["cuda:".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _));
        if (!known) throw new UserErrorException($"unknown device '{Device}': cpu or cuda (cuda:N for one of several GPUs)");
    }

    /// <summary>
    /// Sets libtorch's threads (process-wide) and returns the device; a bad thread count or device
    /// (<see cref="Validate"/>), a libtorch that cannot load or a missing GPU is a <see cref="UserErrorException"/>.
    /// </summary>
    internal Device Resolve()
    {
        Validate();
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
            throw new UserErrorException("device cuda: no CUDA device is available to this build. Reference a CUDA build of libtorch instead of libtorch-cpu-linux-x64, or build with -p:LibTorch=external and put a CUDA libtorch (an installed PyTorch's torch/lib) on LD_LIBRARY_PATH (docs/torchsharp.md); and check the driver.");
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
              "(or a CUDA build of libtorch) and rebuild so that its files are in the output directory (docs/torchsharp.md). " +
              "If it is there, the cause may be libLibTorchSharp.so needing GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks: the " +
              "RecDistill package's build targets fix that, but a ProjectReference to the repository's projects does not bring them; " +
              "add <Import Project=\".../build/LibTorchSharpCompat.targets\" /> to the application's project (docs/packages.md).";
    }
}
