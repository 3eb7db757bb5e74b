using System.Globalization;

namespace RecDistill.Data;

/// <summary>
/// Which columns of a delimited file hold the user, the item and optionally the rating and the timestamp,
/// in that order, each by header name or by 1-based position (an entry of digits only is a position):
/// <c>user_id,parent_asin,rating,timestamp</c> or <c>2,1</c>; an empty rating entry (<c>user,item,,time</c>)
/// takes a timestamp without a rating. The file's other columns are ignored.
/// </summary>
public sealed class ColumnChoice
{
    private static readonly string[] Roles = ["user", "item", "rating", "timestamp"];
    private readonly string?[] _entries;

    private ColumnChoice(string?[] entries) => _entries = entries;

    /// <summary>Whether a rating column is chosen (the third entry, not left empty).</summary>
    public bool HasRating => _entries.Length > 2 && _entries[2] is not null;

    /// <summary>Whether any column is given by name, so the file needs a header row.</summary>
    public bool NeedsHeader => _entries.Any(e => e is not null && !IdOrder.IsDigits(e));

    /// <exception cref="ArgumentException">Fewer than 2 or more than 4 entries, a missing user or item, a position of 0, or a column twice.</exception>
    public static ColumnChoice Parse(IReadOnlyList<string> entries)
    {
        if (entries.Count is < 2 or > 4)
            throw new ArgumentException($"columns: give 2 to 4 columns (user, item, [rating], [timestamp]), not {entries.Count}");
        var e = entries.Select(x => x.Trim()).Select(x => x.Length == 0 ? null : x).ToArray();
        for (int r = 0; r < 2; r++)
            if (e[r] is null) throw new ArgumentException($"columns: the {Roles[r]} column is missing");
        foreach (var x in e)
            if (x is not null && IdOrder.IsDigits(x) && (!int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p < 1))
                throw new ArgumentException($"columns: position {x} is not a column number (the first column is 1)");
        var given = e.Where(x => x is not null).ToList();
        if (given.Distinct(StringComparer.Ordinal).Count() != given.Count)
            throw new ArgumentException("columns: a column is chosen twice");
        return new ColumnChoice(e);
    }

    /// <summary>The chosen columns as indices: names looked up in <paramref name="header"/> (exact, else the one match ignoring case).</summary>
    internal ColumnMap Resolve(IReadOnlyList<string>? header, string path, long line)
    {
        var index = new int[4];
        for (int r = 0; r < 4; r++)
        {
            string? x = r < _entries.Length ? _entries[r] : null;
            if (x is null) { index[r] = -1; continue; }
            if (IdOrder.IsDigits(x)) { index[r] = int.Parse(x, CultureInfo.InvariantCulture) - 1; continue; }
            var names = header ?? throw new InvalidOperationException("a column name without a header row");
            int at = names.ToList().FindIndex(h => h == x);
            if (at < 0)
            {
                var loose = names.Select((h, i) => (h, i)).Where(p => string.Equals(p.h, x, StringComparison.OrdinalIgnoreCase)).ToList();
                if (loose.Count != 1)
                    throw new DataFormatException(path, line,
                        $"no column named '{x}' in the header (its columns: {string.Join(", ", names.Select(h => TextFields.Show(h)))})");
                at = loose[0].i;
            }
            index[r] = at;
        }
        var used = index.Where(i => i >= 0).ToList();
        if (used.Distinct().Count() != used.Count)
            throw new DataFormatException(path, line, "the chosen columns name one column of the header twice");
        return new ColumnMap(index[0], index[1], index[2], index[3]);
    }

    /// <summary>The entries, trimmed and comma-separated (an empty entry where a column is left out).</summary>
    public override string ToString() => string.Join(",", _entries.Select(x => x ?? ""));
}

/// <summary>0-based field indices of the user, item, rating and timestamp (-1: none).</summary>
internal sealed record ColumnMap(int User, int Item, int Rating, int Timestamp)
{
    /// <summary>The first fields of a row in the order user, item, rating, timestamp.</summary>
    public static ColumnMap Leading(int fields) => new(0, 1, fields >= 3 ? 2 : -1, fields >= 4 ? 3 : -1);

    public void Check(int fields, string path, long line)
    {
        int last = Math.Max(Math.Max(User, Item), Math.Max(Rating, Timestamp));
        if (last >= fields)
            throw new DataFormatException(path, line, $"column {last + 1} is chosen, but the row has {fields} field(s)");
    }
}
