using RecDistill.Kernels;
using RecDistill.Tests.Data;

namespace RecDistill.Tests;

/// <summary>
/// Tests that need something a machine may lack are reported as skipped there, with the reason,
/// instead of passing without checking anything.
/// </summary>
internal static class Requirements
{
    public const string NoAvx512 = "needs AVX-512 (Vector512 accelerated): the kernel is not used on this CPU, which takes libtorch's path";

    /// <summary>The path under ../shared/data, or null when it is not on this machine.</summary>
    public static string? SharedData(string relative) =>
        RealDataTests.FindSharedData() is { } data && Path.Combine(data, relative) is var path && (File.Exists(path) || Directory.Exists(path)) ? path : null;
}

/// <summary>A fact that runs only where the AVX-512 kernels run.</summary>
public sealed class Avx512FactAttribute : FactAttribute
{
    public Avx512FactAttribute() { if (!Sgemm.IsSupported) Skip = Requirements.NoAvx512; }
}

/// <summary>A theory that runs only where the AVX-512 kernels run.</summary>
public sealed class Avx512TheoryAttribute : TheoryAttribute
{
    public Avx512TheoryAttribute() { if (!Sgemm.IsSupported) Skip = Requirements.NoAvx512; }
}

/// <summary>A fact that runs only where ../shared/data holds <c>relative</c> (a file or folder).</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string relative)
    {
        if (Requirements.SharedData(relative) is null) Skip = $"needs ../shared/data/{relative}, which is not on this machine";
    }
}

/// <summary>A fact that runs only where DenormalFlush sets the flags (Linux on x64).</summary>
public sealed class LinuxX64FactAttribute : FactAttribute
{
    public LinuxX64FactAttribute() { if (!DenormalFlush.IsSupported) Skip = "needs Linux on x64, where DenormalFlush sets the CPU's flush-to-zero flags"; }
}

/// <summary>A fact that runs only on Linux (device files, FIFOs, statx).</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute() { if (!OperatingSystem.IsLinux()) Skip = "needs Linux"; }
}
