using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace RecDistill.Serving;

/// <summary>
/// The serving model file (spec: docs/serving.md). Little-endian throughout. Version 2, written: an 80-byte
/// header (magic "RDSERVE\0", version, header size, backbone, precision, dim, layers, user and item counts,
/// train pairs, file length, checksum, the byte lengths of the two id blocks), then user vectors (row-major),
/// item vectors (dimension-major), train offsets (int64, users + 1), train items (int32, ascending per user),
/// user id offsets and item id offsets (int32, count + 1) and the ids themselves (UTF-8). Version 1, still read:
/// a 64-byte header and int64 ids before the train offsets; its ids become their decimal text.
/// </summary>
public static class CompactModelFile
{
    /// <summary>The format version this class writes (version 1 is still read).</summary>
    public const uint FormatVersion = 2;
    /// <summary>Header length in bytes of a version 2 file.</summary>
    public const int HeaderSize = 80;
    /// <summary>Byte offset of the 64-bit checksum in the header; the checksum covers the whole file with this field zeroed.</summary>
    public const int ChecksumOffset = 56;
    /// <summary>Suggested file name extension.</summary>
    public const string Extension = ".rdm";
    private const int Version1HeaderSize = 64;
    private static ReadOnlySpan<byte> Magic => "RDSERVE\0"u8;
    private static ReadOnlySpan<byte> TrainingMagic => "RDMODEL\0"u8;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>File length (format version 2) of a model with these sizes; the id byte counts are <see cref="IdBytes"/>.</summary>
    public static long LengthOf(int dim, int users, int items, VectorPrecision p, long trainPairs, long userIdBytes, long itemIdBytes) =>
        HeaderSize
        + VectorTable.ByteLength(users, dim, p) + VectorTable.ByteLength(items, dim, p)
        + 8L * (users + 1L) + 4L * trainPairs
        + 4L * (users + 1L) + 4L * (items + 1L) + userIdBytes + itemIdBytes;

    private static long Version1LengthOf(int dim, int users, int items, VectorPrecision p, long trainPairs) =>
        Version1HeaderSize
        + VectorTable.ByteLength(users, dim, p) + VectorTable.ByteLength(items, dim, p)
        + 8L * users + 8L * items
        + 8L * (users + 1L) + 4L * trainPairs;

    /// <summary>The UTF-8 bytes of a list of ids, all together.</summary>
    public static long IdBytes(IReadOnlyList<string> ids)
    {
        long n = 0;
        foreach (var id in ids) n += Encoding.UTF8.GetByteCount(id);
        return n;
    }

    /// <summary>Writes the model in the current format atomically: a temporary file beside <paramref name="path"/>, then a rename.</summary>
    public static void Write(string path, CompactModel model)
    {
        var bytes = Serialize(model);
        OutputPath.WriteAtomically(path, s => s.Write(bytes));
    }

    /// <summary>The whole file (current format version, checksum filled in) as bytes.</summary>
    /// <exception cref="ArgumentException">The file would be longer than the largest .NET array.</exception>
    public static byte[] Serialize(CompactModel m)
    {
        long userIdBytes = IdBytes(m.UserIds), itemIdBytes = IdBytes(m.ItemIds);
        long length = LengthOf(m.Dim, m.NumUsers, m.NumItems, m.Precision, m.TrainPairs, userIdBytes, itemIdBytes);
        if (length > Array.MaxLength)
            throw new ArgumentException($"the model would take {length} bytes; files over {Array.MaxLength} bytes are not supported");
        var b = new byte[length];
        var s = b.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], HeaderSize);
        s[16] = (byte)m.Backbone;
        s[17] = (byte)m.Precision;
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], m.Dim);
        BinaryPrimitives.WriteInt32LittleEndian(s[24..], m.Layers);
        BinaryPrimitives.WriteInt32LittleEndian(s[28..], m.NumUsers);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], m.NumItems);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], m.TrainPairs);
        BinaryPrimitives.WriteInt64LittleEndian(s[48..], length);
        BinaryPrimitives.WriteInt64LittleEndian(s[64..], userIdBytes);
        BinaryPrimitives.WriteInt64LittleEndian(s[72..], itemIdBytes);
        int o = HeaderSize;
        m.Users.WriteTo(s[o..]);
        o += (int)VectorTable.ByteLength(m.NumUsers, m.Dim, m.Precision);
        m.Items.WriteTo(s[o..]);
        o += (int)VectorTable.ByteLength(m.NumItems, m.Dim, m.Precision);
        o += Put(s[o..], m.TrainOffsets);
        for (int u = 0; u < m.NumUsers; u++) o += Put(s[o..], m.TrainItems(u));
        o += PutIdOffsets(s[o..], m.UserIds);
        o += PutIdOffsets(s[o..], m.ItemIds);
        foreach (var id in m.UserIds) o += Encoding.UTF8.GetBytes(id, s[o..]);
        foreach (var id in m.ItemIds) o += Encoding.UTF8.GetBytes(id, s[o..]);
        if (o != length) throw new InvalidOperationException($"wrote {o} bytes, expected {length}");
        BinaryPrimitives.WriteUInt64LittleEndian(s[ChecksumOffset..], Kernels.Checksum(s));
        return b;
    }

    /// <summary>int32 offsets of each id's bytes in its block: 0, then the end of each id.</summary>
    private static int PutIdOffsets(Span<byte> dest, IReadOnlyList<string> ids)
    {
        int end = 0;
        BinaryPrimitives.WriteInt32LittleEndian(dest, 0);
        for (int x = 0; x < ids.Count; x++)
        {
            end += Encoding.UTF8.GetByteCount(ids[x]);
            BinaryPrimitives.WriteInt32LittleEndian(dest[(4 * (x + 1))..], end);
        }
        return 4 * (ids.Count + 1);
    }

    private static int Put<T>(Span<byte> dest, ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        bytes.CopyTo(dest);
        return bytes.Length;
    }

    /// <summary>Reads and checks a model file (format version 2, or 1 with integer ids).</summary>
    /// <exception cref="CompactModelFormatException">The file is missing, too large, or not a valid model file.</exception>
    public static CompactModel Read(string path)
    {
        if (!File.Exists(path)) throw new CompactModelFormatException(path, "no such model file");
        long length = new FileInfo(path).Length;
        if (length > Array.MaxLength) throw new CompactModelFormatException(path, $"{length} bytes is too large to be a model file");
        return Deserialize(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses a whole file's bytes; <paramref name="source"/> names it in errors. The buffer's checksum field is zeroed.</summary>
    public static CompactModel Deserialize(byte[] bytes, string source)
    {
        CompactModelFormatException Bad(string reason) => new(source, reason);
        var s = bytes.AsSpan();
        if (s.Length >= 8 && s[..8].SequenceEqual(TrainingMagic))
            throw Bad("this is a training model file (model.bin), not an exported one; run `recdistill export --model RUN_DIR --out FILE` first");
        if (s.Length == 0) throw Bad("empty file, not a RecDistill serving model file");
        if (s.Length < 8 || !s[..8].SequenceEqual(Magic))
            throw Bad(s.Length < 8 && Magic.StartsWith(s) ? $"truncated: {s.Length} bytes" : "not a RecDistill serving model file (bad magic)");
        if (s.Length < 12) throw Bad($"truncated: {s.Length} bytes, shorter than the header");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        if (version is not (1 or FormatVersion))
            throw Bad($"format version {version} is not supported (this build reads versions 1 and {FormatVersion}); re-export the model with this build");
        int headerSize = version == 1 ? Version1HeaderSize : HeaderSize;
        if (s.Length < headerSize) throw Bad($"truncated: {s.Length} bytes, shorter than the {headerSize}-byte header");
        uint declaredHeader = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]);
        if (declaredHeader != headerSize) throw Bad($"corrupt header: header size {declaredHeader}, expected {headerSize}");
        long declared = BinaryPrimitives.ReadInt64LittleEndian(s[48..]);
        if (declared != s.Length)
            throw Bad(s.Length < declared
                ? $"truncated: the header says {declared} bytes but the file has {s.Length}"
                : declared < headerSize ? $"corrupt header: file length {declared}" : $"{s.Length - declared} unexpected bytes after the end of the model ({declared} bytes)");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(s[ChecksumOffset..]);
        s.Slice(ChecksumOffset, 8).Clear();
        ulong actual = Kernels.Checksum(s);
        if (actual != stored) throw Bad($"checksum mismatch (stored {stored:x16}, computed {actual:x16}): the file is corrupt");

        byte backbone = s[16], precision = s[17];
        if (!Enum.IsDefined((ModelBackbone)backbone)) throw Bad($"unknown backbone code {backbone}");
        if (!Enum.IsDefined((VectorPrecision)precision)) throw Bad($"unknown precision code {precision}");
        var p = (VectorPrecision)precision;
        int dim = BinaryPrimitives.ReadInt32LittleEndian(s[20..]);
        int layers = BinaryPrimitives.ReadInt32LittleEndian(s[24..]);
        int users = BinaryPrimitives.ReadInt32LittleEndian(s[28..]);
        int items = BinaryPrimitives.ReadInt32LittleEndian(s[32..]);
        long pairs = BinaryPrimitives.ReadInt64LittleEndian(s[40..]);
        long userIdBytes = version == 1 ? 0 : BinaryPrimitives.ReadInt64LittleEndian(s[64..]);
        long itemIdBytes = version == 1 ? 0 : BinaryPrimitives.ReadInt64LittleEndian(s[72..]);
        if (dim <= 0 || layers < 0 || users <= 0 || items <= 0 || pairs < 0 || pairs > int.MaxValue
            || userIdBytes < 0 || userIdBytes > int.MaxValue || itemIdBytes < 0 || itemIdBytes > int.MaxValue)
            throw Bad($"header values out of range (dim {dim}, layers {layers}, users {users}, items {items}, train pairs {pairs}, id bytes {userIdBytes} and {itemIdBytes})");
        long expected = version == 1
            ? Version1LengthOf(dim, users, items, p, pairs)
            : LengthOf(dim, users, items, p, pairs, userIdBytes, itemIdBytes);
        if (expected != s.Length) throw Bad($"the header's sizes need {expected} bytes but the file has {s.Length}");

        int o = headerSize;
        int ub = (int)VectorTable.ByteLength(users, dim, p), ib = (int)VectorTable.ByteLength(items, dim, p);
        var userTable = VectorTable.ReadFrom(s.Slice(o, ub), users, dim, p, dimMajor: false);
        o += ub;
        var itemTable = VectorTable.ReadFrom(s.Slice(o, ib), items, dim, p, dimMajor: true);
        o += ib;
        string[] userIds, itemIds;
        if (version == 1)
        {
            userIds = Take<long>(s, ref o, users).Select(id => id.ToString(CultureInfo.InvariantCulture)).ToArray();
            itemIds = Take<long>(s, ref o, items).Select(id => id.ToString(CultureInfo.InvariantCulture)).ToArray();
        }
        else
        {
            int idStart = o + 8 * (users + 1) + 4 * (int)pairs;
            var userEnds = Take<int>(s, ref idStart, users + 1);
            var itemEnds = Take<int>(s, ref idStart, items + 1);
            userIds = TakeIds(s.Slice(idStart, (int)userIdBytes), userEnds, "user", Bad);
            itemIds = TakeIds(s.Slice(idStart + (int)userIdBytes, (int)itemIdBytes), itemEnds, "item", Bad);
        }
        var offsets = Take<long>(s, ref o, users + 1);
        var train = Take<int>(s, ref o, (int)pairs);
        if (userTable.Scales is { } us && !ScalesValid(us)) throw Bad("a user vector has a negative or non-finite int8 scale");
        if (itemTable.Scales is { } its && !ScalesValid(its)) throw Bad("an item vector has a negative or non-finite int8 scale");
        return new CompactModel((ModelBackbone)backbone, layers, userTable, itemTable, userIds, itemIds, offsets, train,
            reason => Bad("inconsistent contents: " + reason));
    }

    /// <summary>The ids of one block: offsets from 0, never decreasing, ending at the block's length; each id strict UTF-8.</summary>
    private static string[] TakeIds(ReadOnlySpan<byte> block, int[] ends, string what, Func<string, CompactModelFormatException> bad)
    {
        if (ends[0] != 0 || ends[^1] != block.Length)
            throw bad($"inconsistent contents: the {what} id offsets do not cover the {what} id bytes");
        var ids = new string[ends.Length - 1];
        for (int x = 0; x < ids.Length; x++)
        {
            int a = ends[x], b = ends[x + 1];
            if (b < a) throw bad($"inconsistent contents: {what} id offsets decrease at {what} {x}");
            try { ids[x] = StrictUtf8.GetString(block[a..b]); }
            catch (DecoderFallbackException) { throw bad($"inconsistent contents: {what} id {x} is not valid UTF-8"); }
        }
        return ids;
    }

    private static bool ScalesValid(float[] scales)
    {
        foreach (var x in scales) if (!(x >= 0) || !float.IsFinite(x)) return false;
        return true;
    }

    private static T[] Take<T>(ReadOnlySpan<byte> s, ref int offset, int count) where T : unmanaged
    {
        int size = Marshal.SizeOf<T>() * count;
        var r = MemoryMarshal.Cast<byte, T>(s.Slice(offset, size)).ToArray();
        offset += size;
        return r;
    }
}
