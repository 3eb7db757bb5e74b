using System.IO.Compression;
using System.Text;
using RecDistill.Data;

namespace RecDistill.Tests.Data;

/// <summary>String ids and RFC 4180 text: each parsing rule, the header rule, column choice, gzip, and the dense order.</summary>
public class StringIdReaderTests
{
    [Fact]
    public void Quotes_doubled_quotes_delimiters_and_line_breaks_inside_quotes_crlf_and_bom()
    {
        using var dir = new TempDir();
        string text = "\uFEFF\"user_id\",\"title\",\"item_id\",\"rating\"\r\n"
                      + "\"U00017\",\"Hello, \"\"World\"\"\r\nsecond line\",\"ART000123\",\"4.5\"\r\n"
                      + "U2 , plain , \"B,1\" , 3\r\n"
                      + "\r\n"
                      + "\"U3\",\"\",\" spaced \",1\r\n";
        var d = DatasetReaders.ReadDelimited(dir.Write("r.csv", text), columns: ["user_id", "item_id", "rating"]);
        Assert.Equal(new[] { ("U00017", "ART000123"), ("U2", "B,1"), ("U3", "spaced") }, Expect.StringPairs(d));
        Assert.Equal(new float?[] { 4.5f, 3, 1 }, d.Interactions.Select(r => r.Rating));
        // The first record spans lines 2 and 3, so the next starts on line 4; a blank line is skipped and counted.
        Assert.Equal(new long[] { 2, 4, 6 }, d.Interactions.Select(r => r.Line));
        Assert.Equal(1, d.Skipped["header lines"]);
        Assert.Equal(1, d.Skipped["blank lines"]);
    }

    [Fact]
    public void Tab_and_semicolon_files_are_rfc_4180_too()
    {
        using var dir = new TempDir();
        var t = DatasetReaders.ReadDelimited(dir.Write("t.tsv", "a\t\"x \"\"y\"\"\"\nb\tz\n"));
        Assert.Equal(new[] { ("a", "x \"y\""), ("b", "z") }, Expect.StringPairs(t));
        // A tab inside quotes is kept by the parser, but an id must be one line of text without control characters.
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.Write("u.tsv", "a\t\"x\ty\"\n"), header: false), 1, "holds a control character");
        var s = DatasetReaders.ReadDelimited(dir.Write("s.csv", "\"a;1\";b\nc;d\n"));
        Assert.Equal(new[] { ("a;1", "b"), ("c", "d") }, Expect.StringPairs(s));
    }

    [Theory]
    [InlineData("\"user_id\",\"item_id\"\n\"U00017\",\"ART000123\"\n", true)] // names above ids with digits
    [InlineData("user,item,rating\nalice,book,5\n", true)]                      // a name above a number
    [InlineData("user,item\n1,2\n", true)]
    [InlineData("U1,I1\nU2,I2\n", false)]                                       // digits in the first row: data
    [InlineData("alice,book\nbob,pen\n", false)]                                // letters only: data (--header true says otherwise)
    [InlineData("1,2\n3,4\n", false)]
    public void Header_rule(string text, bool header)
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadDelimited(dir.Write("h.csv", text));
        Assert.Equal(header ? 1 : 2, d.Interactions.Count);
        Assert.Equal(header, d.Skipped.ContainsKey("header lines"));
        if (text.Contains("rating")) return; // read as data, "rating" would be a bad rating
        var forced = DatasetReaders.ReadDelimited(dir.Write("f.csv", text), header: !header);
        Assert.Equal(header ? 2 : 1, forced.Interactions.Count);
    }

    [Fact]
    public void Columns_by_position_by_name_and_their_mistakes()
    {
        using var dir = new TempDir();
        string p = dir.Write("c.csv", "ts,item,user\n100,I1,U1\n200,I2,U2\n");
        var byName = DatasetReaders.ReadDelimited(p, columns: ["user", "ITEM", "", "ts"]);
        Assert.Equal(new[] { ("U1", "I1"), ("U2", "I2") }, Expect.StringPairs(byName));
        Assert.Equal(new long?[] { 100, 200 }, byName.Interactions.Select(r => r.Timestamp));
        Assert.All(byName.Interactions, r => Assert.Null(r.Rating));
        var byPosition = DatasetReaders.ReadDelimited(p, columns: ["3", "2"]);
        Assert.Equal(Expect.StringPairs(byName), Expect.StringPairs(byPosition));

        Expect.Bad(() => DatasetReaders.ReadDelimited(p, columns: ["user", "asin"]), 1, "no column named 'asin' in the header (its columns: ts, item, user)");
        Expect.Bad(() => DatasetReaders.ReadDelimited(p, columns: ["3", "4"]), 2, "column 4 is chosen, but the row has 3 field(s)");
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.Write("r.csv", "ts,item,user\n1,I1,U1\n2,I2\n"), columns: ["3", "2"]), 3, "found 2 field(s)");
        Assert.Throws<ArgumentException>(() => DatasetReaders.ReadDelimited(p, header: false, columns: ["user", "item"]));
        Assert.Contains("missing", Assert.Throws<ArgumentException>(() => ColumnChoice.Parse(["user", " "])).Message);
        Assert.Contains("position 0", Assert.Throws<ArgumentException>(() => ColumnChoice.Parse(["0", "1"])).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => ColumnChoice.Parse(["2", "2"])).Message);
        Assert.Contains("2 to 4", Assert.Throws<ArgumentException>(() => ColumnChoice.Parse(["1"])).Message);
        Assert.Throws<ArgumentException>(() => new DataOptions { Format = DataFormat.Citeulike, Path = p, Columns = ["1", "2"] }.Validate());
    }

    [Fact]
    public void Gzip_files_are_read_through_and_what_is_not_gzip_named()
    {
        using var dir = new TempDir();
        string text = "user_id,item_id\n" + string.Concat(Enumerable.Range(0, 5000).Select(k => $"\"U{k % 97:D5}\",\"ART{k:D6}\"\n"));
        string plain = dir.Write("p.csv", text);
        string gz = Path.Combine(dir.Path, "p.csv.gz");
        using (var f = File.Create(gz))
        using (var z = new GZipStream(f, CompressionLevel.Fastest))
            z.Write(Encoding.UTF8.GetBytes(text));
        Assert.Equal(Expect.StringPairs(DatasetReaders.ReadDelimited(plain)), Expect.StringPairs(DatasetReaders.ReadDelimited(gz)));
        // users.dat (and every other format) too.
        string users = Path.Combine(dir.Path, "users.dat.gz");
        using (var f = File.Create(users))
        using (var z = new GZipStream(f, CompressionLevel.Fastest))
            z.Write("2 A B\n1 C\n"u8);
        Assert.Equal(new[] { ("0", "A"), ("0", "B"), ("1", "C") }, Expect.StringPairs(DatasetReaders.ReadCiteulike(users)));
        string notGzip = dir.Write("plain.csv.gz", "1,2\n");
        Assert.Contains("gzip", Assert.Throws<DataFormatException>(() => DatasetReaders.ReadDelimited(notGzip)).Reason);
    }

    private static byte[] Gzip(string text)
    {
        var m = new MemoryStream();
        using (var z = new GZipStream(m, CompressionLevel.Fastest))
            z.Write(Encoding.UTF8.GetBytes(text));
        return m.ToArray();
    }

    [Fact]
    public void A_truncated_or_damaged_gzip_file_is_an_error_not_a_shorter_dataset()
    {
        using var dir = new TempDir();
        string text = string.Concat(Enumerable.Range(0, 3000).Select(k => $"{k % 97},{k * 7919 % 100003}\n"));
        byte[] gz = Gzip(text);
        // GZipStream alone reads every one of these cuts without a word: the trailer is what tells.
        foreach (int keep in new[] { gz.Length / 2, gz.Length - 8, gz.Length - 3, 11 })
        {
            string csv = dir.WriteBytes($"cut{keep}.csv.gz", gz[..keep]);
            Expect.Bad(() => DatasetReaders.ReadDelimited(csv), 0, "truncated");
            string lists = dir.WriteBytes($"cut{keep}.txt.gz", gz[..keep]);
            Expect.Bad(() => DatasetReaders.ReadLightgcn(lists), 0, "truncated");
        }
        byte[] badCrc = (byte[])gz.Clone();
        badCrc[^8] ^= 1;
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.WriteBytes("crc.csv.gz", badCrc)), 0, "CRC-32");
        byte[] garbage = [.. gz, .. "junk"u8];
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.WriteBytes("junk.csv.gz", garbage)), 0, "damaged");
    }

    [Fact]
    public void Concatenated_gzip_members_with_names_and_zero_padding_are_read_whole()
    {
        using var dir = new TempDir();
        string first = string.Concat(Enumerable.Range(0, 4000).Select(k => $"{k % 53},{k}\n"));
        string second = "7,1\n8,2\n";
        // The second member carries a file name (FNAME), as gzip writes it.
        byte[] named = Gzip(second);
        named[3] |= 8;
        named = [.. named[..10], .. "part2.csv\0"u8, .. named[10..]];
        string path = dir.WriteBytes("multi.csv.gz", [.. Gzip(first), .. named, .. new byte[16]]);
        string plain = dir.Write("multi.csv", first + second);
        Assert.Equal(Expect.StringPairs(DatasetReaders.ReadDelimited(plain)), Expect.StringPairs(DatasetReaders.ReadDelimited(path)));
        Assert.Equal(4002, DatasetReaders.ReadDelimited(dir.WriteBytes("multi.txt.gz", [.. Gzip(first.Replace(',', ' ')), .. Gzip(second.Replace(',', ' '))]), " ").Interactions.Count);
    }

    [Fact]
    public void Invalid_utf8_deep_in_a_quoted_csv_is_reported_at_its_line()
    {
        using var dir = new TempDir();
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 20000).Select(k => $"\"U{k}\",\"I{k}\"\n"))));
        bytes.AddRange([(byte)'U', (byte)',', 0xC3, 0x28, (byte)'\n']);
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.WriteBytes("u.csv", bytes.ToArray())), 20001, "not valid UTF-8");
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.WriteBytes("w.csv", Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes("a,b\n")).ToArray())), 1, "UTF-16");
    }

    [Fact]
    public void Empty_ids_are_refused_and_any_other_text_is_an_id()
    {
        using var dir = new TempDir();
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.Write("e.csv", "U1,I1\n\"\",I2\n")), 2, "user id is empty");
        var d = DatasetReaders.ReadDelimited(dir.Write("o.csv", "-1,1.5\n007,ünï\n"));
        Assert.Equal(new[] { ("-1", "1.5"), ("007", "ünï") }, Expect.StringPairs(d));
        var c = DatasetReaders.ReadCiteulike(dir.Write("users.dat", "2 ART1 B-2\n"));
        Assert.Equal(new[] { ("0", "ART1"), ("0", "B-2") }, Expect.StringPairs(c));
    }

    [Fact]
    public void Dense_order_is_numbers_by_value_then_other_ids_ordinally()
    {
        string[] ids = ["b", "10", "U2", "9", "007", "7", "07", "U10", "B", "99999999999999999999999"];
        Assert.Equal(new[] { "7", "07", "007", "9", "10", "99999999999999999999999", "B", "U10", "U2", "b" }, ids.Order(IdOrder.Instance));
        var rows = ids.Select((u, k) => new RawInteraction(u, ids[^(k + 1)], null, null, k)).ToList();
        var d = DataSplitter.Split("s", rows, SplitMethod.Order);
        Assert.Equal(ids.Order(IdOrder.Instance), d.UserIds);
        Assert.Equal(ids.Order(IdOrder.Instance), d.ItemIds);
    }

    [Fact]
    public void The_id_pool_gives_one_instance_per_text_and_keeps_padded_numbers_apart()
    {
        var pool = new IdPool();
        string seven = pool.Get("7".AsSpan());
        Assert.Same(seven, pool.Get("7".AsSpan()));
        Assert.Same(seven, pool.Get("7"));
        Assert.Equal("007", pool.Get("007".AsSpan()));
        Assert.NotSame(seven, pool.Get("007".AsSpan()));
        Assert.Same(pool.Get("4194303".AsSpan()), pool.Get("4194303".AsSpan())); // the last value the array holds
        Assert.Same(pool.Get("99999999".AsSpan()), pool.Get("99999999".AsSpan()));
        Assert.Same(pool.Get("U1".AsSpan()), pool.Get("U1".AsSpan()));
    }
}
