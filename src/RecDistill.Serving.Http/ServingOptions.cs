namespace RecDistill.Serving.Http;

/// <summary>How top-K candidates are found among the item vectors.</summary>
public enum IndexKind
{
    /// <summary>Every item is scored (the default): the lists equal the trained model's ranking.</summary>
    Exact,
    /// <summary>An approximate HNSW graph over the item vectors (USearch, inner product): faster on large catalogues, may miss items.</summary>
    Hnsw,
}

/// <summary>Settings of the approximate index (<see cref="IndexKind.Hnsw"/>).</summary>
public sealed record HnswOptions
{
    /// <summary>Graph edges per node (USearch "connectivity", HNSW's M).</summary>
    public int Connectivity { get; init; } = 16;

    /// <summary>Beam width while the graph is built (HNSW's efConstruction).</summary>
    public int ExpansionAdd { get; init; } = 128;

    /// <summary>
    /// Candidates fetched from the graph per query, which is also the search's beam width (at least k plus
    /// the items to leave out); they are rescored exactly and the best k kept. More candidates, better
    /// recall, slower queries (docs/serving.md has the trade-off measured).
    /// </summary>
    public int Candidates { get; init; } = 128;
}

/// <summary>Everything `recdistill serve` can be told; <see cref="ServingHost"/> reads it.</summary>
public sealed record ServingOptions
{
    /// <summary>The model file written by `recdistill export`.</summary>
    public required string ModelPath { get; init; }

    /// <summary>Where Kestrel listens (semicolon-separated). Port 0 picks a free port.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8080";

    /// <summary>How top-K candidates are found: every item scored (exact, the default) or an HNSW index.</summary>
    public IndexKind Index { get; init; } = IndexKind.Exact;

    /// <summary>Settings of the HNSW index; used only when <see cref="Index"/> is <see cref="IndexKind.Hnsw"/>.</summary>
    public HnswOptions Hnsw { get; init; } = new();

    /// <summary>The largest k a request may ask for.</summary>
    public int MaxK { get; init; } = 1000;

    /// <summary>k when a request does not give one.</summary>
    public int DefaultK { get; init; } = 20;

    /// <summary>The most users in one batch request; more is answered 413.</summary>
    public int MaxBatchUsers { get; init; } = 1000;

    /// <summary>The most item ids in an exclude list or a from-items request.</summary>
    public int MaxItemList { get; init; } = 1000;

    /// <summary>
    /// The longest request line (method, path and query) the server of <see cref="ServingHost.Build"/> reads, in
    /// bytes: at least 64 KiB, and 64 bytes per id of <see cref="MaxItemList"/>, so that a full exclude list of
    /// long ids (UUIDs, URL-encoded) fits in a GET. Kestrel answers a longer line with 414 and no body.
    /// </summary>
    public int MaxRequestLineBytes => (int)Math.Min(int.MaxValue / 2, Math.Max(64L * 1024, 64L * MaxItemList + 1024));

    /// <summary>The largest request body in bytes; more is answered 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>Reload the model when its file is replaced (a watcher on its folder).</summary>
    public bool WatchFile { get; init; } = true;

    /// <summary>How long the file must stay quiet after a change before it is loaded.</summary>
    public TimeSpan ReloadDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// False (the default): a model that cannot be loaded at start is an error. True: the service starts
    /// without a model, /health answers 503 and queries 503 until a valid file appears.
    /// </summary>
    public bool StartWithoutModel { get; init; }

    /// <summary>How long shutdown waits for requests in flight.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The first mistake in the options, or null.</summary>
    public string? Check()
    {
        // (Kestrel would throw a FormatException with a stack trace from inside the host for a bad URL.)
        if (string.IsNullOrWhiteSpace(ModelPath)) return "a model file is required";
        if (string.IsNullOrWhiteSpace(Urls)) return "no URL to listen on";
        foreach (var url in Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (!IsListenUrl(url)) return $"'{url}' is not a URL to listen on (http://HOST:PORT or https://HOST:PORT; HOST may be * or +)";
        if (!Enum.IsDefined(Index)) return $"unknown index kind {Index}";
        if (MaxK < 1) return "the largest k must be at least 1";
        if (DefaultK < 1 || DefaultK > MaxK) return $"the default k must be from 1 to {MaxK}";
        if (MaxBatchUsers < 1) return "the largest batch must be at least 1 user";
        if (MaxItemList < 1) return "the longest item list must be at least 1";
        if (MaxBodyBytes < 64) return "the largest body must be at least 64 bytes";
        if (Hnsw.Connectivity < 2 || Hnsw.ExpansionAdd < 1 || Hnsw.Candidates < 1) return "HNSW settings must be positive (connectivity at least 2)";
        if (ReloadDelay < TimeSpan.Zero || ShutdownTimeout < TimeSpan.Zero) return "delays must not be negative";
        return null;
    }

    /// <summary>An absolute http or https URL with a host (Kestrel's wildcards * and + count as hosts).</summary>
    private static bool IsListenUrl(string url)
    {
        var probe = url.Replace("://*", "://any", StringComparison.Ordinal).Replace("://+", "://any", StringComparison.Ordinal);
        return Uri.TryCreate(probe, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0;
    }
}
