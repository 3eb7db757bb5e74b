using System.Buffers.Binary;
using System.IO.Compression;

namespace RecDistill.Data;

/// <summary>Damaged or truncated gzip data, in words for the user (reported for the whole file).</summary>
internal sealed class GzipDataException(string message) : IOException(message);

/// <summary>
/// Decompresses a gzip file member by member (RFC 1952), checking each member's trailer: the CRC-32 and
/// length (ISIZE) of what was inflated. GZipStream stops quietly where a truncated file ends, so a cut-off
/// download would read as a shorter, complete dataset; here it is a <see cref="GzipDataException"/>.
/// Concatenated members (<c>cat a.gz b.gz</c>) are read in turn; zero bytes after the last are ignored, as gzip does.
/// </summary>
/// <remarks>
/// DeflateStream reads its input ahead and does not say where the deflate data ended, so its input is handed
/// out in reads of at most <see cref="Chunk"/> bytes from a seekable file: the end lies in the last read, and
/// the trailer is the 8 bytes there that match the CRC-32 and length (a chance match is about 2^-64 per place).
/// </remarks>
internal sealed class GzipMembers : ForwardReadStream
{
    private const int Chunk = 8192;
    private readonly Stream _file;
    private readonly CappedReads _input;
    private DeflateStream? _inflate;
    private long _dataStart;
    private uint _crc;
    private uint _size;
    private bool _started;
    private bool _done;

    public GzipMembers(Stream seekableFile)
    {
        _file = seekableFile;
        _input = new CappedReads(seekableFile);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (!_started)
        {
            _started = true;
            if (!StartMember(first: true)) _done = true;
        }
        while (!_done)
        {
            int n = _inflate!.Read(buffer);
            if (n > 0)
            {
                _crc = Crc32.Append(_crc, buffer[..n]);
                _size += (uint)n;
                return n;
            }
            FinishMember();
            if (!StartMember(first: false)) _done = true;
        }
        return 0;
    }

    /// <summary>Reads a member header at the file position; false at the end of the file (or of zero padding).</summary>
    private bool StartMember(bool first)
    {
        long at = _file.Position;
        Span<byte> fixedPart = stackalloc byte[10];
        int got = ReadUpTo(fixedPart);
        if (got == 0) return false;
        if (got < 2 || fixedPart[0] != 0x1f || fixedPart[1] != 0x8b)
        {
            if (!first && fixedPart[..got].IndexOfAnyExcept((byte)0) < 0 && OnlyZerosFollow()) return false;
            throw first
                ? new InvalidDataException("it does not start with the gzip signature")
                : new GzipDataException($"the gzip data is damaged: byte {at} after a complete gzip member is neither another member nor the end of the file");
        }
        if (got < 10) throw Truncated();
        if (fixedPart[2] != 8) throw new InvalidDataException($"unknown gzip compression method {fixedPart[2]}");
        byte flags = fixedPart[3];
        if ((flags & 0xE0) != 0) throw new InvalidDataException("reserved gzip header flags are set");
        if ((flags & 4) != 0) // FEXTRA
        {
            Span<byte> len = stackalloc byte[2];
            if (ReadUpTo(len) < 2) throw Truncated();
            Skip(BinaryPrimitives.ReadUInt16LittleEndian(len));
        }
        if ((flags & 8) != 0) SkipZeroTerminated(); // FNAME
        if ((flags & 16) != 0) SkipZeroTerminated(); // FCOMMENT
        if ((flags & 2) != 0) Skip(2); // FHCRC
        _dataStart = _file.Position;
        _crc = 0;
        _size = 0;
        _inflate?.Dispose();
        _inflate = new DeflateStream(_input, CompressionMode.Decompress, leaveOpen: true);
        return true;
    }

    /// <summary>Finds the member's trailer where the deflate data ended and leaves the file after it.</summary>
    private void FinishMember()
    {
        long handed = _file.Position;
        long from = Math.Max(_dataStart, handed - 2 * Chunk);
        _file.Position = from;
        var window = new byte[handed - from + 8];
        int got = ReadUpTo(window);
        for (int e = 0; e + 8 <= got; e++)
            if (BinaryPrimitives.ReadUInt32LittleEndian(window.AsSpan(e)) == _crc
                && BinaryPrimitives.ReadUInt32LittleEndian(window.AsSpan(e + 4)) == _size)
            {
                _file.Position = from + e + 8;
                return;
            }
        throw Truncated();
    }

    private static GzipDataException Truncated() => new(
        "the gzip data is truncated or damaged: a member's end check (CRC-32 and length) is missing or does not match "
        + "what was decompressed; is the file cut off (an incomplete download or copy)? gzip -t tells");

    private bool OnlyZerosFollow()
    {
        var buffer = new byte[Chunk];
        int n;
        while ((n = _file.Read(buffer, 0, buffer.Length)) > 0)
            if (buffer.AsSpan(0, n).IndexOfAnyExcept((byte)0) >= 0) return false;
        return true;
    }

    private int ReadUpTo(Span<byte> into)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = _file.Read(into[got..]);
            if (n == 0) break;
            got += n;
        }
        return got;
    }

    private void Skip(int count)
    {
        if (_file.Position + count > _file.Length) throw Truncated();
        _file.Position += count;
    }

    private void SkipZeroTerminated()
    {
        int b;
        while ((b = _file.ReadByte()) > 0) { }
        if (b < 0) throw Truncated();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inflate?.Dispose();
            _file.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>The file, handed to DeflateStream in reads of at most <see cref="Chunk"/> bytes.</summary>
    private sealed class CappedReads(Stream file) : ForwardReadStream
    {
        public override int Read(byte[] buffer, int offset, int count) => file.Read(buffer, offset, Math.Min(count, Chunk));
        public override int Read(Span<byte> buffer) => file.Read(buffer[..Math.Min(buffer.Length, Chunk)]);
    }
}

/// <summary>A stream that can only be read forward: what GzipMembers and its input have in common.</summary>
internal abstract class ForwardReadStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>CRC-32 (IEEE 802.3, as gzip and zip use), slicing by 8.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Build();

    private static uint[] Build()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        for (int i = 0; i < 256; i++)
            for (int s = 1; s < 8; s++)
                t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xFF];
        return t;
    }

    /// <summary>The CRC-32 of the bytes hashed so far (<paramref name="crc"/>, 0 for none) followed by <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        var t = Table;
        while (data.Length >= 8)
        {
            uint lo = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ c;
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            c = t[7 * 256 + (lo & 0xFF)] ^ t[6 * 256 + ((lo >> 8) & 0xFF)] ^ t[5 * 256 + ((lo >> 16) & 0xFF)] ^ t[4 * 256 + (lo >> 24)]
              ^ t[3 * 256 + (hi & 0xFF)] ^ t[2 * 256 + ((hi >> 8) & 0xFF)] ^ t[256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
            data = data[8..];
        }
        foreach (byte b in data)
            c = t[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }
}
