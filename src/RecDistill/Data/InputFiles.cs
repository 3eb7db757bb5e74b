using System.IO.Compression;

namespace RecDistill.Data;

/// <summary>Opens a data file for reading: every reason it cannot be read becomes a <see cref="DataFormatException"/>; a name ending in .gz is decompressed on the fly.</summary>
internal static class InputFiles
{
    public static bool IsGzip(string path) => path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);

    public static Stream Open(string path)
    {
        if (Directory.Exists(path))
            throw new DataFormatException(path, 0, "is a directory, expected a file");
        if (!File.Exists(path))
            throw new DataFormatException(path, 0, "does not exist");
        Stream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: IsGzip(path) ? 64 * 1024 : 1,
                FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new DataFormatException(path, 0, $"cannot be opened: {e.Message}");
        }
        return IsGzip(path) ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    /// <summary>A failure while reading, at the line about to be read; damaged gzip data says so.</summary>
    public static DataFormatException ReadError(string path, long line, Exception e) => e is InvalidDataException
        ? new DataFormatException(path, line, $"the gzip data is damaged or not gzip at all ({e.Message})")
        : new DataFormatException(path, line, $"read error: {e.Message}");

    public static bool IsReadFailure(Exception e) => e is IOException or UnauthorizedAccessException or InvalidDataException;
}
