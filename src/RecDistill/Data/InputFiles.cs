namespace RecDistill.Data;

/// <summary>Opens a data file for reading: every reason it cannot be read becomes a <see cref="DataFormatException"/>; a name ending in .gz is decompressed on the fly, each gzip member checked (<see cref="GzipMembers"/>).</summary>
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
        if (!IsGzip(path)) return file;
        // A pipe cannot be searched for the members' trailers: it is read unchecked.
        return file.CanSeek ? new GzipMembers(file) : new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress);
    }

    /// <summary>A failure while reading, at the line about to be read; damaged gzip data says so.</summary>
    public static DataFormatException ReadError(string path, long line, Exception e) => e is GzipDataException
        ? new DataFormatException(path, 0, e.Message)
        : e is InvalidDataException
        ? new DataFormatException(path, line, $"the gzip data is damaged or not gzip at all ({e.Message})")
        : new DataFormatException(path, line, $"read error: {e.Message}");

    public static bool IsReadFailure(Exception e) => e is IOException or UnauthorizedAccessException or InvalidDataException;
}
