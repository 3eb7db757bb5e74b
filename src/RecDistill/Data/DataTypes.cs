namespace RecDistill.Data;

/// <summary>A user's mistake in an input file: names the file, the 1-based line (0 = whole file) and why.</summary>
public sealed class DataFormatException : Exception
{
    public string FilePath { get; }
    public long LineNumber { get; }
    public string Reason { get; }

    public DataFormatException(string filePath, long lineNumber, string reason)
        : base(lineNumber > 0 ? $"{filePath}:{lineNumber}: {reason}" : $"{filePath}: {reason}")
    {
        FilePath = filePath;
        LineNumber = lineNumber;
        Reason = reason;
    }
}

/// <summary>
/// One (user, item) event as read from a file, with the ids as written there (any text; "42" is the text 42).
/// Rating/Timestamp are null when the format has none.
/// </summary>
public readonly record struct RawInteraction(string User, string Item, float? Rating, long? Timestamp, long Line);

/// <summary>Interactions in file order, before cleaning and splitting.</summary>
public sealed class RawDataset
{
    public required string Source { get; init; }
    public required List<RawInteraction> Interactions { get; init; }
    /// <summary>Lines skipped under a documented policy (e.g. blank lines), by reason.</summary>
    public Dictionary<string, int> Skipped { get; } = new();
}

public enum DataFormat { Synthetic, Citeulike, Movielens, Csv, Lightgcn, Split }

public enum SplitMethod { Order, Random, Time }

/// <summary>
/// Train/validation/test interactions with dense indices (0..NumUsers-1, 0..NumItems-1). Dense indices follow
/// <see cref="IdOrder"/> (all-integer ids: ascending numeric order); the ids are kept for output.
/// </summary>
public sealed class SplitDataset
{
    public required string Name { get; init; }
    /// <summary>The id of each dense user (dense index = position).</summary>
    public required string[] UserIds { get; init; }
    /// <summary>The id of each dense item.</summary>
    public required string[] ItemIds { get; init; }
    /// <summary>Per dense user: dense item indices, in split order.</summary>
    public required int[][] Train { get; init; }
    public required int[][] Valid { get; init; }
    public required int[][] Test { get; init; }
    /// <summary>What loading and cleaning did (raw counts, removed rows, skipped lines), for `stats` and logs.</summary>
    public List<string> Log { get; init; } = new();

    public int NumUsers => UserIds.Length;
    public int NumItems => ItemIds.Length;
    public long TrainCount => Train.Sum(t => (long)t.Length);
    public long ValidCount => Valid.Sum(t => (long)t.Length);
    public long TestCount => Test.Sum(t => (long)t.Length);
}
