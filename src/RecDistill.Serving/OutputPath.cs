using System.Runtime.InteropServices;

namespace RecDistill.Serving;

/// <summary>
/// Writing a file whole or not at all, and what a path about to be written names: the one atomic writer of
/// this assembly's model files and of the training library's files (which sees these internals).
/// </summary>
internal static class OutputPath
{
    /// <summary>
    /// Whether <paramref name="path"/> exists and is neither a regular file nor a directory, after following
    /// links: a character device, pipe or socket such as <c>/dev/stdout</c> or <c>/dev/null</c>. Renaming a
    /// file over such a name would replace the device's name with a plain file, so it is written straight
    /// through instead. Read with Linux's statx; elsewhere every path counts as a file.
    /// </summary>
    internal static bool IsSpecial(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (StandardStream(path) is not null) return true; // whatever it points to: a terminal, a pipe, or a file the shell opened
        var buffer = new byte[256]; // struct statx: stx_mode is the 16-bit field at offset 28 on every architecture
        try
        {
            if (StatX(AtFdCwd, path, 0, StatxType, buffer) != 0) return false; // missing: a new file
        }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
        int type = BitConverter.ToUInt16(buffer, 28) & 0xF000;
        return type is not (RegularFile or Directory);
    }

    /// <summary>
    /// The path a rename should replace: a symbolic link's final target, so that the link stays and the file it
    /// points to is replaced; otherwise the path itself.
    /// </summary>
    internal static string RenameTarget(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target ? target.FullName : path;
    }

    /// <summary>
    /// Writes <paramref name="path"/> whole or not at all: <paramref name="write"/> fills a temporary file beside
    /// it (named by this process's id and a unique part, so that concurrent writers never share one), which is
    /// flushed to disk and renamed over the path's <see cref="RenameTarget"/>. A special file (<see cref="IsSpecial"/>)
    /// is written straight through. Afterwards, the temporaries of this file left by writers killed mid-write are
    /// removed (<see cref="RemoveStaleTemporaries"/>).
    /// </summary>
    internal static void WriteAtomically(string path, Action<Stream> write)
    {
        if (IsSpecial(path))
        {
            WriteThrough(path, write);
            return;
        }
        var full = Path.GetFullPath(RenameTarget(path));
        var dir = Path.GetDirectoryName(full)!;
        var name = Path.GetFileName(full);
        System.IO.Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{name}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
        RemoveStaleTemporaries(dir, name);
    }

    /// <summary>
    /// Temporaries of <paramref name="name"/> in <paramref name="dir"/> (".NAME.PID[.UNIQUE].tmp") left by writers
    /// killed mid-write, e.g. a training run stopped at the end of a session while writing its checkpoint: those
    /// whose process is gone. A live writer's temporary, this process's included, is left alone.
    /// </summary>
    private static void RemoveStaleTemporaries(string dir, string name)
    {
        string prefix = $".{name}.";
        foreach (var file in System.IO.Directory.EnumerateFiles(dir, $".{name}.*.tmp"))
        {
            var middle = Path.GetFileName(file)[prefix.Length..^".tmp".Length];
            int dot = middle.IndexOf('.');
            if (!int.TryParse(dot < 0 ? middle : middle[..dot], out int pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
            try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>
    /// Writes <paramref name="path"/>, a special file (<see cref="IsSpecial"/>), straight through. The process's own
    /// standard output or error (/dev/stdout, /dev/fd/1, /proc/self/fd/1, and 2 likewise) is written through the
    /// descriptor it already has: opening the name again would start at offset 0 of a file the shell redirected it
    /// to, over what was written there before.
    /// </summary>
    internal static void WriteThrough(string path, Action<Stream> write)
    {
        if (StandardStream(path) is { } fd)
        {
            Console.Out.Flush();
            Console.Error.Flush();
            using var standard = fd == 1 ? Console.OpenStandardOutput() : Console.OpenStandardError();
            write(standard);
            standard.Flush();
            return;
        }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        write(stream);
        stream.Flush();
    }

    /// <summary>1 or 2 when <paramref name="path"/> names this process's standard output or error, else null.</summary>
    private static int? StandardStream(string path) => Path.GetFullPath(path) switch
    {
        "/dev/stdout" or "/dev/fd/1" or "/proc/self/fd/1" => 1,
        "/dev/stderr" or "/dev/fd/2" or "/proc/self/fd/2" => 2,
        _ => null,
    };

    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int RegularFile = 0x8000, Directory = 0x4000;

    [DllImport("libc.so.6", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatX(int dirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
}
