using System.Globalization;
using System.Text;

namespace RecDistill.Data;

/// <summary>How fields on a line are separated.</summary>
internal readonly record struct Separator(string? Text)
{
    /// <summary>Null text: runs of spaces/tabs, the convention of most recommender dumps.</summary>
    public static readonly Separator Whitespace = new((string?)null);

    public bool IsWhitespace => Text is null;

    public string Describe() => Text switch
    {
        null => "whitespace",
        "\t" => "tab",
        "," => "comma",
        ";" => "semicolon",
        _ => $"'{Text}'",
    };

    /// <summary>Accepts a literal separator or a name ("tab", "space", "whitespace", "\t").</summary>
    public static Separator FromOption(string delimiter)
    {
        if (delimiter.Length == 0)
            throw new ArgumentException("delimiter must not be empty (leave it unset to detect it)");
        switch (delimiter.Trim().ToLowerInvariant())
        {
            case "tab" or "\\t": return new("\t");
            case "space" or "whitespace" or "ws": return Whitespace;
            case "comma": return new(",");
            case "semicolon": return new(";");
        }
        // A single space almost always means "columns separated by spaces", possibly several.
        if (delimiter.Trim().Length == 0 && delimiter != "\t")
            return Whitespace;
        return new(delimiter);
    }

    /// <summary>Picks the separator from a sample line: "::", tab, comma, semicolon, else whitespace.</summary>
    public static Separator Detect(string line, bool allowDoubleColon)
    {
        if (allowDoubleColon && line.Contains("::", StringComparison.Ordinal)) return new("::");
        if (line.Contains('\t')) return new("\t");
        if (line.Contains(',')) return new(",");
        if (line.Contains(';')) return new(";");
        return Whitespace;
    }
}

/// <summary>Splitting lines into fields and parsing numeric fields with line-precise errors.</summary>
internal static class TextFields
{
    public static bool IsBlank(string line) => string.IsNullOrWhiteSpace(line);

    /// <summary>Splits <paramref name="line"/> into trimmed field ranges (reusing <paramref name="fields"/>).</summary>
    public static void Split(string line, Separator sep, List<Range> fields)
    {
        fields.Clear();
        var s = line.AsSpan();
        if (sep.IsWhitespace)
        {
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i == s.Length) break;
                int start = i;
                while (i < s.Length && !IsSpace(s[i])) i++;
                fields.Add(start..i);
            }
            return;
        }
        string d = sep.Text!;
        int pos = 0;
        while (true)
        {
            int k = s[pos..].IndexOf(d.AsSpan(), StringComparison.Ordinal);
            int end = k < 0 ? s.Length : pos + k;
            fields.Add(Trim(s, pos, end));
            if (k < 0) break;
            pos = end + d.Length;
        }
    }

    private static bool IsSpace(char c) => c == ' ' || c == '\t' || c == '\v' || c == '\f';

    private static Range Trim(ReadOnlySpan<char> s, int start, int end)
    {
        while (start < end && IsSpace(s[start])) start++;
        while (end > start && IsSpace(s[end - 1])) end--;
        return start..end;
    }

    public static bool LooksLikeInteger(ReadOnlySpan<char> tok)
    {
        if (tok.Length > 0 && (tok[0] == '-' || tok[0] == '+')) tok = tok[1..];
        return tok.Length > 0 && AllDigits(tok);
    }

    private static bool AllDigits(ReadOnlySpan<char> tok)
    {
        foreach (char c in tok)
            if (c < '0' || c > '9') return false;
        return true;
    }

    /// <summary>
    /// An id as it stands in the file, trimmed of outer spaces: any non-empty text without control characters,
    /// so that it fits one line of a user list or an id file. One string per distinct id, from <paramref name="pool"/>.
    /// </summary>
    public static string ReadId(ReadOnlySpan<char> tok, string what, string path, long line, IdPool pool)
    {
        tok = TrimSpaces(tok);
        if (tok.IsEmpty)
            throw new DataFormatException(path, line, $"{what} is empty");
        foreach (char c in tok)
            if (char.IsControl(c))
                throw new DataFormatException(path, line,
                    $"{what} '{Show(tok)}' holds a control character (a tab or line break inside quotes?); ids are one line of text");
        return pool.Get(tok);
    }

    /// <summary>Parses a non-negative count that must fit an int (e.g. the item count in users.dat).</summary>
    public static int ParseCount(ReadOnlySpan<char> tok, string what, string path, long line)
    {
        if (int.TryParse(tok, NumberStyles.None, CultureInfo.InvariantCulture, out int v))
            return v;
        if (tok.IsEmpty)
            throw new DataFormatException(path, line, $"{what} is empty");
        if (IdOrder.IsDigits(tok))
            throw new DataFormatException(path, line, $"{what} {Show(tok)} is out of range");
        throw new DataFormatException(path, line, $"{what} '{Show(tok)}' is not a non-negative integer");
    }

    /// <summary>The span without leading and trailing spaces, tabs, vertical tabs and form feeds.</summary>
    public static ReadOnlySpan<char> TrimSpaces(ReadOnlySpan<char> s)
    {
        int a = 0, b = s.Length;
        while (a < b && IsSpace(s[a])) a++;
        while (b > a && IsSpace(s[b - 1])) b--;
        return s[a..b];
    }

    public static float ParseRating(ReadOnlySpan<char> tok, string path, long line)
    {
        if (tok.IsEmpty)
            throw new DataFormatException(path, line, "rating is empty");
        if (float.TryParse(tok, NumberStyles.Float, CultureInfo.InvariantCulture, out float r) && float.IsFinite(r))
            return r;
        throw new DataFormatException(path, line, $"rating '{Show(tok)}' is not a finite number");
    }

    /// <summary>
    /// Parses a timestamp: integer (any sign), a decimal (floored: some dumps write seconds as floats),
    /// or an ISO-8601 date/time (converted to Unix seconds, UTC unless it carries an offset).
    /// A numeric date with the year last (<c>01/02/2020</c>, <c>1-2-2020</c>, <c>01.02.20</c>) is refused: it reads
    /// month-first or day-first depending on who wrote it, and a wrong guess silently reorders a time split.
    /// </summary>
    public static long ParseTimestamp(ReadOnlySpan<char> tok, string path, long line)
    {
        if (tok.IsEmpty)
            throw new DataFormatException(path, line, "timestamp is empty");
        if (long.TryParse(tok, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long t))
            return t;
        if (double.TryParse(tok, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
            && double.IsFinite(d) && Math.Abs(d) < 9e18)
            return (long)Math.Floor(d);
        if (YearLast(tok) is int sep)
            throw new DataFormatException(path, line,
                $"timestamp '{Show(tok)}' is a date with the year last, which reads day-first or month-first depending on "
                + $"who wrote it ({Show(tok[..sep])} could be either); {AcceptedTimestamps}");
        if (tok.Length >= 8 && char.IsAsciiDigit(tok[0])
            && DateTimeOffset.TryParse(tok, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var when))
            return when.ToUnixTimeSeconds();
        throw new DataFormatException(path, line, $"timestamp '{Show(tok)}' is neither a number nor a date; {AcceptedTimestamps}");
    }

    private const string AcceptedTimestamps =
        "timestamps are Unix seconds (1580551200) or ISO 8601 dates (2020-02-01 or 2020-02-01T10:00:00Z)";

    /// <summary>
    /// For <c>a/b/yy[yy]</c> (separators / - or .; a and b of one or two digits, anything may follow the year),
    /// the length of <c>a/b</c>; else null.
    /// </summary>
    private static int? YearLast(ReadOnlySpan<char> tok)
    {
        int i = 0;
        int Digits(ReadOnlySpan<char> t, ref int k) { int start = k; while (k < t.Length && char.IsAsciiDigit(t[k])) k++; return k - start; }
        if (Digits(tok, ref i) is < 1 or > 2 || i == tok.Length) return null;
        char sep = tok[i];
        if (sep is not ('/' or '-' or '.')) return null;
        i++;
        if (Digits(tok, ref i) is < 1 or > 2 || i == tok.Length || tok[i] != sep) return null;
        int pair = i;
        i++;
        int year = Digits(tok, ref i);
        return year is 2 or 4 && (i == tok.Length || !char.IsAsciiDigit(tok[i])) ? pair : null;
    }

    /// <summary>Renders a bad field for a message: control characters made visible, long fields cut.</summary>
    public static string Show(ReadOnlySpan<char> tok)
    {
        const int max = 40;
        var sb = new StringBuilder();
        foreach (char c in tok.Length > max ? tok[..max] : tok)
            sb.Append(char.IsControl(c) ? '?' : c);
        if (tok.Length > max) sb.Append("...");
        return sb.ToString();
    }
}
