using System.Runtime.InteropServices;

namespace RecDistill.Kernels;

/// <summary>
/// Lets libtorch's OpenMP worker threads sleep between parallel regions (OMP_WAIT_POLICY=PASSIVE)
/// unless the user chose a policy. By default libgomp's idle workers spin for a while, and on a
/// 2-core machine they then take the core from our own kernels' threads and from a second run:
/// an MKD epoch on two threads took 4.13 s with the default policy against 3.09-3.46 s with passive
/// workers (bench/speed.cs, CiteULike). libgomp reads the variable once, when libtorch loads, so this
/// must run before the first tensor call; setting it later has no effect.
/// </summary>
internal static class ThreadTuning
{
    private const string Variable = "OMP_WAIT_POLICY";

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE in the process environment (the native one, which libgomp reads;
    /// Environment.SetEnvironmentVariable changes only .NET's copy on Unix) when it is not set.
    /// Returns the policy in effect, or null where it does not apply (not Linux).
    /// </summary>
    public static string? PreferSleepingWorkers()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var chosen = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrEmpty(chosen)) return chosen;
        try
        {
            if (SetEnv(Variable, "PASSIVE", 0) != 0) return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        Environment.SetEnvironmentVariable(Variable, "PASSIVE");
        return "PASSIVE";
    }
}
