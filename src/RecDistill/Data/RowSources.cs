using System.Text;
using nietras.SeparatedValues;

namespace RecDistill.Data;

/// <summary>The rows of a delimited file, each as its fields (ranges into a text) and the line it starts on.</summary>
internal interface IRowSource : IDisposable
{
    string Path { get; }
    /// <summary>The separator in words, for messages ("comma", "whitespace").</summary>
    string Separator { get; }
    /// <summary>Whether the file had any content at all (a byte-order mark alone is none).</summary>
    bool SawAnyLine { get; }
    /// <summary>The next row; <paramref name="fields"/> is left empty for a blank row. Text and ranges are valid until the next call.</summary>
    bool Next(List<Range> fields, out ReadOnlySpan<char> text, out long line);
}

/// <summary>
/// Rows that are lines split on whitespace runs or a literal of several characters ("::"): formats
/// that never quote, read by <see cref="LineReader"/> with exact line numbers.
/// </summary>
internal sealed class LineRowSource(LineReader reader, Separator separator) : IRowSource
{
    public string Path => reader.Path;
    public string Separator => separator.Describe();
    public bool SawAnyLine => reader.LineNumber > 0;

    public bool Next(List<Range> fields, out ReadOnlySpan<char> text, out long line)
    {
        if (!reader.TryReadLine(out string s))
        {
            text = default;
            line = reader.LineNumber;
            return false;
        }
        line = reader.LineNumber;
        text = s;
        if (TextFields.IsBlank(s)) fields.Clear();
        else TextFields.Split(s, separator, fields);
        return true;
    }

    public void Dispose() => reader.Dispose();
}

/// <summary>
/// RFC 4180 rows with a one-character separator, parsed by Sep: fields in double quotes may hold the
/// separator, line breaks and doubled quotes (<c>""</c> for one). Fields are trimmed of spaces and tabs
/// outside the quotes; a quote inside an unquoted field, or text after a closing quote, is an error at
/// the row's first line (a lone quote would otherwise swallow the rest of the file silently).
/// CRLF, LF and CR line ends; a UTF-8 byte-order mark is skipped; text must be valid UTF-8.
/// </summary>
internal sealed class SepRowSource : IRowSource
{
    private readonly SepReader _reader;
    private long _lastLine;
    private char[] _buffer = new char[256];
    private bool _sawRow;

    public string Path { get; }
    public string Separator { get; }
    public bool SawAnyLine => _sawRow;

    public SepRowSource(string path, char separator, string describe)
    {
        Path = path;
        Separator = describe;
        var text = new StreamReader(InputFiles.Open(path), new UTF8Encoding(encoderShouldEmitUTF8Identifier: true, throwOnInvalidBytes: true),
            detectEncodingFromByteOrderMarks: false, bufferSize: 64 * 1024);
        try
        {
            _reader = Sep.New(separator).Reader(o => o with { HasHeader = false, DisableColCountCheck = true }).From(text);
        }
        catch (Exception e)
        {
            text.Dispose();
            throw Translate(e, 1);
        }
    }

    public bool Next(List<Range> fields, out ReadOnlySpan<char> text, out long line)
    {
        fields.Clear();
        bool more;
        try
        {
            more = _reader.MoveNext();
        }
        catch (Exception e) when (e is DecoderFallbackException || InputFiles.IsReadFailure(e))
        {
            throw Translate(e, _lastLine + 1);
        }
        if (!more)
        {
            text = default;
            line = 0;
            return false;
        }
        _sawRow = true;
        var row = _reader.Current;
        // Sep numbers lines from the end of the row before; the first row starts on line 1.
        line = row.RowIndex == 0 ? 1 : row.LineNumberFrom;
        _lastLine = row.LineNumberToExcl - 1;
        int used = 0;
        for (int c = 0; c < row.ColCount; c++)
        {
            var raw = TextFields.TrimSpaces(row[c].Span);
            if (used + raw.Length > _buffer.Length)
                Array.Resize(ref _buffer, Math.Max(2 * _buffer.Length, used + raw.Length));
            int start = used;
            if (raw.Length > 0 && raw[0] == '"') used += Unquote(raw, _buffer.AsSpan(used), line);
            else if (raw.Contains('"'))
                throw new DataFormatException(Path, line,
                    $"a quote inside the unquoted field '{TextFields.Show(raw)}'; quote the whole field and double the quote (RFC 4180)");
            else
            {
                raw.CopyTo(_buffer.AsSpan(used));
                used += raw.Length;
            }
            fields.Add(start..used);
        }
        if (fields.Count == 1 && used == 0 && TextFields.TrimSpaces(row.Span).IsEmpty) fields.Clear(); // a blank line
        text = _buffer.AsSpan(0, used);
        return true;
    }

    /// <summary>Writes the content of a quoted field (its doubled quotes made single) and returns its length.</summary>
    private int Unquote(ReadOnlySpan<char> quoted, Span<char> destination, long line)
    {
        int written = 0, i = 1;
        while (true)
        {
            int q = quoted[i..].IndexOf('"');
            if (q < 0)
                throw new DataFormatException(Path, line, "a quoted field is never closed (its closing quote is missing)");
            quoted.Slice(i, q).CopyTo(destination[written..]);
            written += q;
            i += q + 1;
            if (i == quoted.Length) return written;
            if (quoted[i] != '"')
                throw new DataFormatException(Path, line,
                    $"text after the closing quote of a field ('{TextFields.Show(quoted)}'); a quote inside a quoted field is written twice");
            destination[written++] = '"';
            i++;
        }
    }

    private DataFormatException Translate(Exception e, long line) => e is DecoderFallbackException
        ? LineReader.FindInvalidText(Path)
        : InputFiles.ReadError(Path, line, e);

    public void Dispose() => _reader.Dispose();
}
