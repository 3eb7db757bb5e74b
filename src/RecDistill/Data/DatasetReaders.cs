namespace RecDistill.Data;

/// <summary>The three files of a pre-split dataset; <see cref="Valid"/> is null when the directory has no validation file.</summary>
public sealed record PreSplitRawData(RawDataset Train, RawDataset? Valid, RawDataset Test);

/// <summary>
/// Readers for the supported file formats. Each returns interactions in file order with raw ids,
/// and reports any problem in the file as a <see cref="DataFormatException"/> with its line.
/// </summary>
public static class DatasetReaders
{
    private const string BlankLines = "blank lines";
    private const string HeaderLines = "header lines";
    private const string UserOnlyLines = "lines with a user and no items";

    /// <summary>
    /// CiteULike <c>users.dat</c>: line n (0-based, blank lines included) is user n;
    /// its first number counts the item ids that follow. A blank line is a user with no items.
    /// </summary>
    public static RawDataset ReadCiteulike(string path)
    {
        using var reader = LineReader.Open(path);
        var rows = new List<RawInteraction>();
        var fields = new List<Range>();
        bool sawData = false;
        while (reader.TryReadLine(out string line))
        {
            long lineNo = reader.LineNumber;
            TextFields.Split(line, Separator.Whitespace, fields);
            if (fields.Count == 0)
                continue;
            sawData = true;
            var s = line.AsSpan();
            int count = TextFields.ParseCount(s[fields[0]], "item count", path, lineNo);
            if (count != fields.Count - 1)
                throw new DataFormatException(path, lineNo,
                    $"item count says {count} but the line lists {fields.Count - 1} item id(s)");
            long user = lineNo - 1;
            for (int k = 1; k < fields.Count; k++)
                rows.Add(new RawInteraction(user, TextFields.ParseId(s[fields[k]], "item id", path, lineNo), null, null, lineNo));
        }
        RequireData(reader, rows, sawData, "no user has any item");
        return new RawDataset { Source = path, Interactions = rows };
    }

    /// <summary>
    /// MovieLens ratings: <c>u.data</c> (tab separated), <c>ratings.dat</c> (<c>::</c> separated; detected by
    /// the presence of <c>::</c>) or <c>ratings.csv</c> (comma, header); always user, item, rating, timestamp.
    /// </summary>
    public static RawDataset ReadMovielens(string path) =>
        ReadColumns(path, separator: null, header: null, minColumns: 4, maxColumns: 4, allowDoubleColon: true);

    /// <summary>
    /// Delimited text with columns user, item, optional rating, optional timestamp (the same number on every line).
    /// <paramref name="delimiter"/>: null detects "::", tab, comma, semicolon or whitespace from the first line;
    /// "tab"/"space"/"whitespace" are accepted as names. <paramref name="header"/>: null detects a header when
    /// the first line's first two fields are both non-integers.
    /// </summary>
    public static RawDataset ReadDelimited(string path, string? delimiter = null, bool? header = null) =>
        ReadColumns(path, delimiter is null ? null : Separator.FromOption(delimiter), header, 2, 4, allowDoubleColon: true);

    /// <summary>LightGCN style: each line is <c>user item item ...</c> separated by whitespace.</summary>
    public static RawDataset ReadLightgcn(string path)
    {
        using var reader = LineReader.Open(path);
        var data = new RawDataset { Source = path, Interactions = new List<RawInteraction>() };
        bool sawData = ReadLists(reader, data);
        RequireData(reader, data.Interactions, sawData, "no line lists any item");
        return data;
    }

    /// <summary>
    /// A directory with <c>train.txt</c>, optional <c>valid.txt</c> (or <c>val.txt</c>) and <c>test.txt</c>. Each file holds
    /// either <c>user item [rating]</c> lines or LightGCN-style <c>user item item ...</c> lines. A file whose own lines
    /// settle the kind (one field, more than three, a fractional rating) is read that way; the others follow the first
    /// such file, or else the evidence pooled over all files (see <c>SampleSplitStyle</c>).
    /// </summary>
    public static PreSplitRawData ReadPreSplit(string directory)
    {
        if (File.Exists(directory))
            throw new DataFormatException(directory, 0, "is a file, expected a directory holding train.txt and test.txt");
        if (!Directory.Exists(directory))
            throw new DataFormatException(directory, 0, "does not exist");
        string train = System.IO.Path.Combine(directory, "train.txt");
        string test = System.IO.Path.Combine(directory, "test.txt");
        string valid = System.IO.Path.Combine(directory, "valid.txt");
        string val = System.IO.Path.Combine(directory, "val.txt");
        foreach (var required in new[] { train, test })
            if (!File.Exists(required))
                throw new DataFormatException(required, 0, "does not exist (a pre-split directory needs train.txt and test.txt)");
        if (File.Exists(valid) && File.Exists(val))
            throw new DataFormatException(directory, 0, "holds both valid.txt and val.txt; keep only one");
        string? validPath = File.Exists(valid) ? valid : File.Exists(val) ? val : null;

        var paths = validPath is null ? new[] { train, test } : new[] { train, validPath, test };
        var samples = paths.Select(SampleSplitStyle).ToArray();
        bool pooledLists = DecideSplitStyle(samples);
        var sets = new RawDataset[paths.Length];
        for (int f = 0; f < paths.Length; f++)
            sets[f] = ReadSplitFile(paths[f], samples[f].Decided ?? pooledLists);
        return validPath is null
            ? new PreSplitRawData(sets[0], null, sets[1])
            : new PreSplitRawData(sets[0], sets[1], sets[2]);
    }

    private static RawDataset ReadSplitFile(string path, bool lists)
    {
        if (!lists)
            return ReadColumns(path, Separator.Whitespace, header: false, minColumns: 2, maxColumns: 3, allowDoubleColon: false);
        using var reader = LineReader.Open(path);
        var data = new RawDataset { Source = path, Interactions = new List<RawInteraction>() };
        bool sawData = ReadLists(reader, data);
        RequireData(reader, data.Interactions, sawData, "no line lists any item");
        return data;
    }

    /// <summary>What the first lines of a pre-split file say about its style.</summary>
    /// <param name="Decided">True (lists) or false (pairs) when a line settles it, else null.</param>
    /// <param name="ThreeFieldLines">How many of the lines read have exactly three fields.</param>
    /// <param name="ThirdValues">Distinct third fields seen on 3-field lines (capped).</param>
    /// <param name="RepeatedUser">Whether a user starts more than one of the lines read.</param>
    private sealed record StyleSample(bool? Decided, int ThreeFieldLines, HashSet<string> ThirdValues, bool RepeatedUser);

    /// <remarks>
    /// "0 6 1" is a valid line in both styles. One field or more than three means lists; a non-integer or negative
    /// third field is a rating, so pairs. Otherwise the evidence is pooled over the files (all files of one dataset
    /// share a style): a constant third field or a user on several lines means pairs, else one line per user means lists.
    /// </remarks>
    private static StyleSample SampleSplitStyle(string path)
    {
        const int sampleLines = 2000;
        using var reader = LineReader.Open(path);
        var fields = new List<Range>();
        var users = new HashSet<string>();
        var thirds = new HashSet<string>();
        int lines = 0, threeField = 0;
        bool repeatedUser = false;
        while (lines < sampleLines && reader.TryReadLine(out string line))
        {
            TextFields.Split(line, Separator.Whitespace, fields);
            if (fields.Count == 0)
                continue;
            lines++;
            var s = line.AsSpan();
            if (fields.Count == 1 || fields.Count > 3)
                return new StyleSample(true, threeField, thirds, repeatedUser);
            if (!users.Add(s[fields[0]].ToString()))
                repeatedUser = true;
            if (fields.Count == 3)
            {
                threeField++;
                var t = s[fields[2]];
                if (!TextFields.LooksLikeInteger(t) || t[0] == '-')
                    return new StyleSample(false, threeField, thirds, repeatedUser);
                if (thirds.Count < 2) thirds.Add(t.ToString());
            }
        }
        return new StyleSample(null, threeField, thirds, repeatedUser);
    }

    /// <summary>Style for the files whose own lines do not settle it: true = lists.</summary>
    private static bool DecideSplitStyle(StyleSample[] samples)
    {
        var decided = samples.FirstOrDefault(s => s.Decided is not null);
        if (decided is not null)
            return decided.Decided!.Value;
        int threeField = samples.Sum(s => s.ThreeFieldLines);
        if (threeField == 0)
            return false; // two fields everywhere: both styles read the same
        bool constantThird = samples.SelectMany(s => s.ThirdValues).Distinct().Count() == 1;
        if ((constantThird && threeField >= 3) || samples.Any(s => s.RepeatedUser))
            return false;
        return true;
    }

    /// <summary>Reads <c>user item item ...</c> lines into <paramref name="data"/>; returns whether any non-blank line was seen.</summary>
    private static bool ReadLists(LineReader reader, RawDataset data)
    {
        var fields = new List<Range>();
        bool sawData = false;
        string path = reader.Path;
        while (reader.TryReadLine(out string line))
        {
            long lineNo = reader.LineNumber;
            TextFields.Split(line, Separator.Whitespace, fields);
            if (fields.Count == 0)
            {
                Count(data, BlankLines);
                continue;
            }
            sawData = true;
            var s = line.AsSpan();
            long user = TextFields.ParseId(s[fields[0]], "user id", path, lineNo);
            if (fields.Count == 1)
                Count(data, UserOnlyLines);
            for (int k = 1; k < fields.Count; k++)
                data.Interactions.Add(new RawInteraction(user, TextFields.ParseId(s[fields[k]], "item id", path, lineNo), null, null, lineNo));
        }
        return sawData;
    }

    private static readonly string[] ColumnNames = ["user id", "item id", "rating", "timestamp"];

    /// <summary>Shared reader for column formats: user, item, [rating], [timestamp], the column count fixed by the first data line.</summary>
    private static RawDataset ReadColumns(string path, Separator? separator, bool? header, int minColumns, int maxColumns, bool allowDoubleColon)
    {
        using var reader = LineReader.Open(path);
        var data = new RawDataset { Source = path, Interactions = new List<RawInteraction>() };
        var rows = data.Interactions;
        var fields = new List<Range>();
        Separator sep = default;
        bool first = true;
        long headerLine = 0;
        int columns = 0;
        long columnsLine = 0;
        while (reader.TryReadLine(out string line))
        {
            long lineNo = reader.LineNumber;
            if (TextFields.IsBlank(line))
            {
                Count(data, BlankLines);
                continue;
            }
            if (first)
            {
                first = false;
                sep = separator ?? Separator.Detect(line, allowDoubleColon);
                TextFields.Split(line, sep, fields);
                bool isHeader = header ?? LooksLikeHeader(line, fields);
                if (isHeader)
                {
                    headerLine = lineNo;
                    Count(data, HeaderLines);
                    continue;
                }
            }
            else
            {
                TextFields.Split(line, sep, fields);
            }

            var s = line.AsSpan();
            if (columns == 0)
            {
                if (fields.Count < minColumns || fields.Count > maxColumns)
                    throw new DataFormatException(path, lineNo,
                        $"expected {DescribeColumns(minColumns, maxColumns)} separated by {sep.Describe()}, found {fields.Count} field(s)");
                columns = fields.Count;
                columnsLine = lineNo;
            }
            else if (fields.Count != columns)
            {
                throw new DataFormatException(path, lineNo,
                    $"found {fields.Count} field(s) separated by {sep.Describe()}, but line {columnsLine} has {columns} ({DescribeColumns(columns, columns)})");
            }

            long user = TextFields.ParseId(s[fields[0]], ColumnNames[0], path, lineNo);
            long item = TextFields.ParseId(s[fields[1]], ColumnNames[1], path, lineNo);
            float? rating = columns >= 3 ? TextFields.ParseRating(s[fields[2]], path, lineNo) : null;
            long? time = columns >= 4 ? TextFields.ParseTimestamp(s[fields[3]], path, lineNo) : null;
            rows.Add(new RawInteraction(user, item, rating, time, lineNo));
        }
        if (rows.Count == 0 && headerLine > 0)
            throw new DataFormatException(path, headerLine, "file has only a header line and no data rows");
        RequireData(reader, rows, sawDataLine: !first, "no data rows");
        return data;
    }

    private static bool LooksLikeHeader(string line, List<Range> fields)
    {
        var s = line.AsSpan();
        if (fields.Count == 0) return false;
        bool firstNumeric = TextFields.LooksLikeInteger(s[fields[0]]);
        bool secondNumeric = fields.Count > 1 && TextFields.LooksLikeInteger(s[fields[1]]);
        return !firstNumeric && !secondNumeric;
    }

    private static string DescribeColumns(int min, int max)
    {
        string names = string.Join(" ", ColumnNames.Take(max).Select((n, i) => i < min ? n.Split(' ')[0] : $"[{n}]"));
        return min == max ? $"{max} fields ({names})" : $"{min} to {max} fields ({names})";
    }

    /// <summary>A file that yields no interactions is a mistake, not an empty dataset; say which kind.</summary>
    private static void RequireData(LineReader reader, List<RawInteraction> rows, bool sawDataLine, string whatIsMissing)
    {
        if (rows.Count > 0) return;
        if (reader.LineNumber == 0)
            throw new DataFormatException(reader.Path, 0, "file is empty");
        if (!sawDataLine)
            throw new DataFormatException(reader.Path, 0, "file has only blank lines");
        throw new DataFormatException(reader.Path, 0, $"file has no interactions ({whatIsMissing})");
    }

    private static void Count(RawDataset data, string reason) =>
        data.Skipped[reason] = data.Skipped.GetValueOrDefault(reason) + 1;
}
