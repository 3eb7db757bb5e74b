using System.Runtime.InteropServices;

namespace RecDistill.Serving;

/// <summary>
/// What a path about to be written names, for the writers that replace a file by renaming a temporary
/// over it (this assembly's model files, and the training library's, which sees these internals).
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

    /// <summary>Writes <paramref name="path"/>, a special file (<see cref="IsSpecial"/>), straight through.</summary>
    internal static void WriteThrough(string path, Action<Stream> write)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        write(stream);
        stream.Flush();
    }

    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int RegularFile = 0x8000, Directory = 0x4000;

    [DllImport("libc.so.6", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatX(int dirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
}
