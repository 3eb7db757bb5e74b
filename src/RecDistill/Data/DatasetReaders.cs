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
    /// CiteULike <c>users.dat</c>: line n (0-based, blank lines included) is user "n";
    /// its first number counts the item ids that follow. A blank line is a user with no items.
    /// </summary>
    public static RawDataset ReadCiteulike(string path)
    {
        using var reader = LineReader.Open(path);
        var rows = new List<RawInteraction>();
        var fields = new List<Range>();
        var ids = new IdPool();
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
            string user = ids.Get((lineNo - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            for (int k = 1; k < fields.Count; k++)
                rows.Add(new RawInteraction(user, TextFields.ReadId(s[fields[k]], "item id", path, lineNo, ids), null, null, lineNo));
        }
        RequireData(reader, rows, sawData, "no user has any item");
        return new RawDataset { Source = path, Interactions = rows };
    }

    /// <summary>
    /// MovieLens ratings: <c>u.data</c> (tab separated), <c>ratings.dat</c> (<c>::</c> separated; detected by
    /// the presence of <c>::</c>) or <c>ratings.csv</c> (comma, header); always user, item, rating, timestamp.
    /// </summary>
    public static RawDataset ReadMovielens(string path) =>
        ReadColumns(path, separator: null, header: null, columns: null, minColumns: 4, maxColumns: 4, allowDoubleColon: true);

    /// <summary>
    /// Delimited text. Without <paramref name="columns"/> each row is user, item, optional rating, optional timestamp
    /// (the same number of fields on every row); with it, the named or numbered columns are taken and the rest ignored
    /// (<see cref="ColumnChoice"/>). <paramref name="delimiter"/>: null detects "::", tab, comma, semicolon or
    /// whitespace from the first line; "tab"/"space"/"whitespace" are accepted as names. A one-character delimiter
    /// reads RFC 4180 text (quoted fields, doubled quotes, delimiters and line breaks inside quotes). <paramref name="header"/>:
    /// null detects a header (<see cref="LooksLikeHeader"/>); column names in <paramref name="columns"/> imply one.
    /// A name ending in .gz is decompressed.
    /// </summary>
    public static RawDataset ReadDelimited(string path, string? delimiter = null, bool? header = null, IReadOnlyList<string>? columns = null) =>
        ReadColumns(path, delimiter is null ? null : Separator.FromOption(delimiter), header,
            columns is null ? null : ColumnChoice.Parse(columns), 2, 4, allowDoubleColon: true);

    /// <summary>LightGCN style: each line is <c>user item item ...</c> separated by whitespace.</summary>
    /// <remarks>
    /// A line with a user and no items is skipped and counted; when they are more than half of the lines,
    /// the file is most likely in another format (a CSV line "1,2" is one field here), which is an error.
    /// </remarks>
    public static RawDataset ReadLightgcn(string path)
    {
        using var reader = LineReader.Open(path);
        var data = new RawDataset { Source = path, Interactions = new List<RawInteraction>() };
        bool sawData = ReadLists(reader, data, out long lines, out string? userOnly);
        int skipped = data.Skipped.GetValueOrDefault(UserOnlyLines);
        if (skipped > 0 && 2L * skipped > lines)
        {
            string advice = userOnly is not null && Separator.Detect(userOnly, allowDoubleColon: true) is { IsWhitespace: false } sep
                ? $"its fields are separated by {sep.Describe()}: try --format csv (user, item, optional rating and timestamp)"
                : "is the format (--format) right?";
            throw new DataFormatException(path, 0,
                $"{skipped} of its {lines} lines have a user and no items, so it does not look like lightgcn data "
                + $"(user item item ..., separated by spaces); {advice}");
        }
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
            return ReadColumns(path, Separator.Whitespace, header: false, columns: null, minColumns: 2, maxColumns: 3, allowDoubleColon: false);
        using var reader = LineReader.Open(path);
        var data = new RawDataset { Source = path, Interactions = new List<RawInteraction>() };
        bool sawData = ReadLists(reader, data, out _, out _);
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

    /// <summary>
    /// Reads <c>user item item ...</c> lines into <paramref name="data"/>; returns whether any non-blank line was seen,
    /// and gives how many there were and the first with a user and no items.
    /// </summary>
    private static bool ReadLists(LineReader reader, RawDataset data, out long lines, out string? firstUserOnly)
    {
        var fields = new List<Range>();
        var ids = new IdPool();
        bool sawData = false;
        lines = 0;
        firstUserOnly = null;
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
            lines++;
            var s = line.AsSpan();
            string user = TextFields.ReadId(s[fields[0]], "user id", path, lineNo, ids);
            if (fields.Count == 1)
            {
                Count(data, UserOnlyLines);
                firstUserOnly ??= line;
            }
            for (int k = 1; k < fields.Count; k++)
                data.Interactions.Add(new RawInteraction(user, TextFields.ReadId(s[fields[k]], "item id", path, lineNo, ids), null, null, lineNo));
        }
        return sawData;
    }

    private static readonly string[] ColumnNames = ["user id", "item id", "rating", "timestamp"];

    /// <summary>The rows of a delimited file: one-character separators through Sep (RFC 4180), the others line by line.</summary>
    private static IRowSource OpenRows(string path, Separator? separator, bool allowDoubleColon)
    {
        var sep = separator ?? DetectSeparator(path, allowDoubleColon);
        return sep.Text is { Length: 1 } one
            ? new SepRowSource(path, one[0], sep.Describe())
            : new LineRowSource(LineReader.Open(path), sep);
    }

    /// <summary>The separator by <see cref="Separator.Detect"/> on the first non-blank line (whitespace for a file without one).</summary>
    private static Separator DetectSeparator(string path, bool allowDoubleColon)
    {
        using var reader = LineReader.Open(path);
        while (reader.TryReadLine(out string line))
            if (!TextFields.IsBlank(line))
                return Separator.Detect(line, allowDoubleColon);
        return Separator.Whitespace;
    }

    /// <summary>
    /// Shared reader for column formats: the header decided on the first rows, then user, item, [rating], [timestamp]
    /// from the chosen columns; every row has the field count of the first one.
    /// </summary>
    private static RawDataset ReadColumns(string path, Separator? separator, bool? header, ColumnChoice? columns,
        int minColumns, int maxColumns, bool allowDoubleColon)
    {
        using var source = OpenRows(path, separator, allowDoubleColon);
        var data = new RawDataset { Source = path, Interactions = new List<RawInteraction>() };
        var fields = new List<Range>();
        // The first two non-blank rows are kept as text until the header is decided.
        var pending = new List<(string Text, Range[] Fields, long Line)>();
        bool sawData = false;
        while (pending.Count < 2 && source.Next(fields, out var text, out long line))
        {
            if (fields.Count == 0) { Count(data, BlankLines); continue; }
            pending.Add((text.ToString(), fields.ToArray(), line));
        }
        if (pending.Count == 0)
        {
            RequireData(path, source.SawAnyLine, data.Interactions, false, "no data rows");
            return data;
        }
        bool isHeader = header ?? (columns?.NeedsHeader == true || LooksLikeHeader(pending));
        if (columns?.NeedsHeader == true && !isHeader)
            throw new ArgumentException("column names (--columns; DataOptions.Columns) need a header row; give positions (1, 2, ...) for a file without one");
        long headerLine = 0;
        var first = pending[0];
        ColumnMap? map = null;
        if (isHeader)
        {
            headerLine = first.Line;
            Count(data, HeaderLines);
            pending.RemoveAt(0);
            if (columns is not null)
                map = columns.Resolve(first.Fields.Select(f => first.Text[f]).ToList(), path, first.Line);
        }
        var ids = new IdPool();
        string? lastUser = null; // files usually list a user's rows together: most rows skip the lookup
        int expected = 0;
        long expectedLine = 0;
        if (isHeader && columns is not null) (expected, expectedLine) = (first.Fields.Length, first.Line);

        void Add(ReadOnlySpan<char> s, IReadOnlyList<Range> f, long line)
        {
            sawData = true;
            if (expected == 0)
            {
                if (columns is null && (f.Count < minColumns || f.Count > maxColumns))
                    throw new DataFormatException(path, line,
                        $"expected {DescribeColumns(minColumns, maxColumns)} separated by {source.Separator}, found {f.Count} field(s)");
                (expected, expectedLine) = (f.Count, line);
            }
            else if (f.Count != expected)
            {
                string what = columns is null ? $" ({DescribeColumns(expected, expected)})" : "";
                throw new DataFormatException(path, line,
                    $"found {f.Count} field(s) separated by {source.Separator}, but line {expectedLine} has {expected}{what}");
            }
            map ??= columns is null ? ColumnMap.Leading(f.Count) : columns.Resolve(null, path, line);
            map.Check(f.Count, path, line);
            var userText = s[f[map.User]];
            string user = lastUser is not null && TextFields.TrimSpaces(userText).SequenceEqual(lastUser)
                ? lastUser
                : lastUser = TextFields.ReadId(userText, ColumnNames[0], path, line, ids);
            string item = TextFields.ReadId(s[f[map.Item]], ColumnNames[1], path, line, ids);
            float? rating = map.Rating >= 0 ? TextFields.ParseRating(s[f[map.Rating]], path, line) : null;
            long? time = map.Timestamp >= 0 ? TextFields.ParseTimestamp(s[f[map.Timestamp]], path, line) : null;
            data.Interactions.Add(new RawInteraction(user, item, rating, time, line));
        }

        foreach (var row in pending) Add(row.Text, row.Fields, row.Line);
        while (source.Next(fields, out var text, out long line))
        {
            if (fields.Count == 0) { Count(data, BlankLines); continue; }
            Add(text, fields, line);
        }
        if (data.Interactions.Count == 0 && headerLine > 0)
            throw new DataFormatException(path, headerLine, "file has only a header line and no data rows");
        RequireData(path, source.SawAnyLine, data.Interactions, sawData, "no data rows");
        return data;
    }

    /// <summary>
    /// The header rule when it is not given: the first row is a header when, in some column, its field has no digit
    /// while the second row's field there has one (a name above an id, a rating or a time), e.g. "user_id" above
    /// "U00017" or "rating" above "4.0". A file of one row: a header when its first two fields have no digit.
    /// Rows of letters only ("user,item" above "alice,book") cannot be told apart: give --header true.
    /// </summary>
    private static bool LooksLikeHeader(List<(string Text, Range[] Fields, long Line)> rows)
    {
        var (text, fields, _) = rows[0];
        bool Digit(string t, Range r) => t.AsSpan()[r].IndexOfAnyInRange('0', '9') >= 0;
        if (rows.Count == 1)
            return fields.Length >= 2 && !Digit(text, fields[0]) && !Digit(text, fields[1]);
        var (text2, fields2, _) = rows[1];
        for (int c = 0; c < Math.Min(fields.Length, fields2.Length); c++)
            if (!Digit(text, fields[c]) && Digit(text2, fields2[c]))
                return true;
        return false;
    }

    private static string DescribeColumns(int min, int max)
    {
        string names = string.Join(" ", ColumnNames.Take(max).Select((n, i) => i < min ? n.Split(' ')[0] : $"[{n}]"));
        return min == max ? $"{max} fields ({names})" : $"{min} to {max} fields ({names})";
    }

    private static void RequireData(LineReader reader, List<RawInteraction> rows, bool sawDataLine, string whatIsMissing) =>
        RequireData(reader.Path, reader.LineNumber > 0, rows, sawDataLine, whatIsMissing);

    /// <summary>A file that yields no interactions is a mistake, not an empty dataset; say which kind.</summary>
    private static void RequireData(string path, bool sawAnyLine, List<RawInteraction> rows, bool sawDataLine, string whatIsMissing)
    {
        if (rows.Count > 0) return;
        if (!sawAnyLine)
            throw new DataFormatException(path, 0, "file is empty");
        if (!sawDataLine)
            throw new DataFormatException(path, 0, "file has only blank lines");
        throw new DataFormatException(path, 0, $"file has no interactions ({whatIsMissing})");
    }

    private static void Count(RawDataset data, string reason) =>
        data.Skipped[reason] = data.Skipped.GetValueOrDefault(reason) + 1;
}
