namespace RecDistill.Data;

/// <summary>A user's mistake in an input file: names the file, the 1-based line (0 = whole file) and why.</summary>
public sealed class DataFormatException : Exception
{
    /// <summary>The input file the problem is in.</summary>
    public string FilePath { get; }
    /// <summary>The 1-based line of the problem, or 0 when it concerns the whole file.</summary>
    public long LineNumber { get; }
    /// <summary>What is wrong, without the file and line.</summary>
    public string Reason { get; }

    /// <summary>An error in <paramref name="filePath"/> at <paramref name="lineNumber"/> (0: the whole file); the message is "file:line: reason".</summary>
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
    /// <summary>The file the interactions were read from ("synthetic" for generated data).</summary>
    public required string Source { get; init; }
    /// <summary>The interactions in file order, ids as written.</summary>
    public required List<RawInteraction> Interactions { get; init; }
    /// <summary>Lines skipped under a documented policy (e.g. blank lines), by reason.</summary>
    public Dictionary<string, int> Skipped { get; } = new();
}

/// <summary>The input formats <see cref="DatasetLoader"/> reads (<see cref="DatasetReaders"/>).</summary>
public enum DataFormat
{
    /// <summary>Generated in memory by <see cref="SyntheticDataGenerator"/>; no file.</summary>
    Synthetic,
    /// <summary>CiteULike <c>users.dat</c>: line n is user n, an item count, then the item ids.</summary>
    Citeulike,
    /// <summary>MovieLens ratings: <c>u.data</c>, <c>ratings.dat</c> or <c>ratings.csv</c>.</summary>
    Movielens,
    /// <summary>Delimited text (RFC 4180) with user, item and optional rating and timestamp columns.</summary>
    Csv,
    /// <summary>LightGCN style: each line is <c>user item item ...</c>, whitespace separated.</summary>
    Lightgcn,
    /// <summary>A directory already split into <c>train.txt</c>, optional <c>valid.txt</c> and <c>test.txt</c>.</summary>
    Split,
}

/// <summary>How <see cref="DataSplitter"/> orders each user's interactions before cutting them into train, validation and test.</summary>
public enum SplitMethod
{
    /// <summary>Each user's rows in file order.</summary>
    Order,
    /// <summary>Each user's rows shuffled with the data options' seed.</summary>
    Random,
    /// <summary>Each user's rows by timestamp (stable); every row needs one.</summary>
    Time,
}

/// <summary>
/// Train/validation/test interactions with dense indices (0..NumUsers-1, 0..NumItems-1). Dense indices follow
/// <see cref="IdOrder"/> (all-integer ids: ascending numeric order); the ids are kept for output.
/// </summary>
public sealed class SplitDataset
{
    /// <summary>A short name of the dataset (from the file or the synthetic settings), for logs and reports.</summary>
    public required string Name { get; init; }
    /// <summary>The id of each dense user (dense index = position).</summary>
    public required string[] UserIds { get; init; }
    /// <summary>The id of each dense item.</summary>
    public required string[] ItemIds { get; init; }
    /// <summary>Per dense user: dense item indices, in split order.</summary>
    public required int[][] Train { get; init; }
    /// <summary>Per dense user: validation items (dense indices).</summary>
    public required int[][] Valid { get; init; }
    /// <summary>Per dense user: test items (dense indices).</summary>
    public required int[][] Test { get; init; }
    /// <summary>What loading and cleaning did (raw counts, removed rows, skipped lines), for `stats` and logs.</summary>
    public List<string> Log { get; init; } = new();

    /// <summary>Number of users (dense indices 0 to NumUsers - 1).</summary>
    public int NumUsers => UserIds.Length;
    /// <summary>Number of items (dense indices 0 to NumItems - 1).</summary>
    public int NumItems => ItemIds.Length;
    /// <summary>Train interactions over all users.</summary>
    public long TrainCount => Train.Sum(t => (long)t.Length);
    /// <summary>Validation interactions over all users.</summary>
    public long ValidCount => Valid.Sum(t => (long)t.Length);
    /// <summary>Test interactions over all users.</summary>
    public long TestCount => Test.Sum(t => (long)t.Length);
}
