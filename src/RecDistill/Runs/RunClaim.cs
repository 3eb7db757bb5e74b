namespace RecDistill.Runs;

/// <summary>
/// A run (a tuning trial, a comparison's run) taken by this process: an exclusive lock on a file beside
/// the run, so that several processes sharing a search's or a comparison's directory split its runs
/// between them. The operating system drops the lock when its process ends, so a killed process leaves
/// no stale claim.
/// </summary>
internal sealed class RunClaim : IDisposable
{
    private readonly string path;
    private FileStream? stream;

    private RunClaim(string path, FileStream stream) => (this.path, this.stream) = (path, stream);

    /// <summary>The claim, or null when another process holds the run.</summary>
    public static RunClaim? TryTake(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        try
        {
            return new RunClaim(path, new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException) when (File.Exists(path))
        {
            return null;
        }
    }

    /// <summary>
    /// Drops the claim once the run's result is written, and removes the lock file unless another
    /// process has taken it meanwhile (that process then finds the result and leaves the run alone).
    /// </summary>
    public void Release()
    {
        if (stream is null) return;
        stream.Dispose();
        stream = null;
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Held by another process (Windows refuses to delete an open file): it goes with that claim.
        }
    }

    /// <summary>Drops the lock and keeps the file (the run did not finish).</summary>
    public void Dispose()
    {
        stream?.Dispose();
        stream = null;
    }
}
