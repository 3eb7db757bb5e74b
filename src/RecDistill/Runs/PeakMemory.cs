using System.Globalization;

namespace RecDistill.Runs;

/// <summary>
/// The process's peak resident memory over one run, where the operating system lets a process restart
/// its own high-water mark (Linux: writing 5 to /proc/self/clear_refs resets VmHWM to the current
/// resident set). Elsewhere nothing is measured, so a run records no figure rather than a wrong one.
/// </summary>
public static class PeakMemory
{
    /// <summary>Restarts the peak at the current resident set; false where that is not possible.</summary>
    public static bool Restart()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return Megabytes() is not null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The peak resident memory since the last <see cref="Restart"/> (or the process's start), in MiB; null where unknown.</summary>
    public static double? Megabytes()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
                var kb = line["VmHWM:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return null;
    }
}
