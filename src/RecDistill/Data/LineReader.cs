using System.Text;

namespace RecDistill.Data;

/// <summary>
/// Streams a text file line by line with 1-based line numbers, so that every problem
/// (bad bytes included) can be reported at its line.
/// </summary>
/// <remarks>
/// StreamReader replaces or throws on invalid UTF-8 without telling which line held it,
/// so lines are split on raw bytes here and each line is decoded strictly on its own.
/// A final line without a newline counts; a trailing newline does not start another line.
/// </remarks>
internal sealed class LineReader : IDisposable
{
    /// <summary>Longest line accepted; guards against binary files with no newlines eating memory.</summary>
    public const int MaxLineBytes = 64 << 20;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _pos;
    private int _len;
    private bool _eof;
    private bool _started;
    private byte[] _carry = new byte[256];
    private int _carryLen;
    private bool _hasPartial;

    public string Path { get; }

    /// <summary>Line number of the line last returned (0 before the first).</summary>
    public long LineNumber { get; private set; }

    private LineReader(string path, Stream stream)
    {
        Path = path;
        _stream = stream;
    }

    /// <summary>Opens a file (gunzipped when its name ends in .gz), turning every reason it cannot be read into a <see cref="DataFormatException"/> at line 0.</summary>
    public static LineReader Open(string path) => new(path, InputFiles.Open(path));

    /// <summary>
    /// The first line of a file that is not valid UTF-8 (or the UTF-16 mark), as the error to report: for readers
    /// that decode in large blocks and so cannot say which line held the bad bytes.
    /// </summary>
    public static DataFormatException FindInvalidText(string path)
    {
        using var reader = Open(path);
        try
        {
            while (reader.TryReadLine(out _)) { }
        }
        catch (DataFormatException e)
        {
            return e;
        }
        return new DataFormatException(path, 0, "is not valid UTF-8 text");
    }

    public bool TryReadLine(out string line)
    {
        while (true)
        {
            if (_pos == _len)
            {
                if (_eof || !Fill())
                    break;
                continue;
            }
            var span = _buffer.AsSpan(_pos, _len - _pos);
            int nl = span.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                LineNumber++;
                if (_carryLen == 0)
                {
                    line = Decode(span[..nl]);
                }
                else
                {
                    Append(span[..nl]);
                    line = Decode(_carry.AsSpan(0, _carryLen));
                    _carryLen = 0;
                }
                _pos += nl + 1;
                _hasPartial = false;
                return true;
            }
            Append(span);
            _hasPartial = true;
            _pos = _len;
        }
        if (_hasPartial)
        {
            LineNumber++;
            line = Decode(_carry.AsSpan(0, _carryLen));
            _carryLen = 0;
            _hasPartial = false;
            return true;
        }
        line = "";
        return false;
    }

    private bool Fill()
    {
        try
        {
            _pos = 0;
            _len = _stream.Read(_buffer, 0, _buffer.Length);
            if (!_started)
            {
                // Top up so the byte-order mark check sees 3 bytes even if the first read is short.
                while (_len < 3)
                {
                    int n = _stream.Read(_buffer, _len, _buffer.Length - _len);
                    if (n == 0) break;
                    _len += n;
                }
                _started = true;
                CheckByteOrderMark();
            }
        }
        catch (Exception e) when (InputFiles.IsReadFailure(e))
        {
            throw InputFiles.ReadError(Path, LineNumber + 1, e);
        }
        if (_len == 0)
            _eof = true;
        return !_eof;
    }

    private void CheckByteOrderMark()
    {
        var b = _buffer.AsSpan(0, _len);
        if (b.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            _pos = 3;
        else if (b.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || b.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]))
            throw new DataFormatException(Path, 1, "file is UTF-16 encoded; save it as UTF-8 or ASCII text");
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        long need = (long)_carryLen + bytes.Length;
        if (need > MaxLineBytes)
            throw new DataFormatException(Path, LineNumber + 1, $"line is longer than {MaxLineBytes >> 20} MiB; is this a text file?");
        if (need > _carry.Length)
            Array.Resize(ref _carry, (int)Math.Min(MaxLineBytes, Math.Max(need, 2L * _carry.Length)));
        bytes.CopyTo(_carry.AsSpan(_carryLen));
        _carryLen += bytes.Length;
    }

    private string Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r')
            bytes = bytes[..^1];
        if (bytes.Length > MaxLineBytes)
            throw new DataFormatException(Path, LineNumber, $"line is longer than {MaxLineBytes >> 20} MiB; is this a text file?");
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            int bad = FirstInvalidUtf8(bytes);
            return bad < 0
                ? throw new DataFormatException(Path, LineNumber, "line is not valid UTF-8 text")
                : throw new DataFormatException(Path, LineNumber, $"line is not valid UTF-8 text (bad byte 0x{bytes[bad]:X2} at column {bad + 1})");
        }
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var status = System.Text.Unicode.Utf8.ToUtf16(bytes, new char[bytes.Length], out int read, out _, replaceInvalidSequences: false);
        return status == System.Buffers.OperationStatus.Done ? -1 : Math.Min(read, bytes.Length - 1);
    }

    public void Dispose() => _stream.Dispose();
}
