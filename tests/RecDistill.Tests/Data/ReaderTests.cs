using System.Text;
using RecDistill.Data;

namespace RecDistill.Tests.Data;

public class CiteulikeReaderTests
{
    [Fact]
    public void Reads_users_by_line_number_including_blank_and_empty_users()
    {
        using var dir = new TempDir();
        string p = dir.Write("users.dat", "\uFEFF2 10 11\n\n1 5\r\n0\n3 7 8 9\n\n\n");
        var d = DatasetReaders.ReadCiteulike(p);
        Assert.Equal(new (long, long)[] { (0, 10), (0, 11), (2, 5), (4, 7), (4, 8), (4, 9) }, Expect.Pairs(d));
        Assert.Equal(new long[] { 1, 1, 3, 5, 5, 5 }, d.Interactions.Select(r => r.Line));
        Assert.All(d.Interactions, r => Assert.Null(r.Rating));
        Assert.Empty(d.Skipped);
        Assert.Equal(p, d.Source);
    }

    [Fact]
    public void Last_line_without_newline_is_read()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadCiteulike(dir.Write("users.dat", "1 3\n2 4 5"));
        Assert.Equal(new (long, long)[] { (0, 3), (1, 4), (1, 5) }, Expect.Pairs(d));
    }

    [Theory]
    [InlineData("1 2\n3 1 2\n", 2, "count says 3")]
    [InlineData("1 1\n1 a\u0001b\n", 2, "item id 'a?b' holds a control character")]
    [InlineData("99999999999 1\n", 1, "item count 99999999999 is out of range")]
    [InlineData("x 1\n", 1, "item count 'x'")]
    public void Malformed_lines_name_line_and_reason(string text, long line, string reason)
    {
        using var dir = new TempDir();
        string p = dir.Write("users.dat", text);
        var e = Expect.Bad(() => DatasetReaders.ReadCiteulike(p), line, reason);
        Assert.Equal(p, e.FilePath);
    }

    [Fact]
    public void Invalid_utf8_is_reported_at_its_line()
    {
        using var dir = new TempDir();
        string p = dir.WriteBytes("users.dat", [.. "1 2\n1 3\n"u8, (byte)'1', (byte)' ', 0xC3, 0x28, (byte)'\n']);
        Expect.Bad(() => DatasetReaders.ReadCiteulike(p), 3, "not valid UTF-8");
    }

    [Fact]
    public void Utf16_file_is_rejected_clearly()
    {
        using var dir = new TempDir();
        string p = dir.WriteBytes("users.dat", Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes("1 2\n")).ToArray());
        Expect.Bad(() => DatasetReaders.ReadCiteulike(p), 1, "UTF-16");
    }

    [Fact]
    public void Empty_and_missing_files_are_whole_file_errors()
    {
        using var dir = new TempDir();
        Expect.Bad(() => DatasetReaders.ReadCiteulike(dir.Write("a.dat", "")), 0, "empty");
        Expect.Bad(() => DatasetReaders.ReadCiteulike(dir.WriteBytes("b.dat", [0xEF, 0xBB, 0xBF])), 0, "empty");
        Expect.Bad(() => DatasetReaders.ReadCiteulike(dir.Write("c.dat", "\n\n")), 0, "only blank lines");
        Expect.Bad(() => DatasetReaders.ReadCiteulike(dir.Write("d.dat", "0\n0\n")), 0, "no user has any item");
        Expect.Bad(() => DatasetReaders.ReadCiteulike(Path.Combine(dir.Path, "nope.dat")), 0, "does not exist");
        Expect.Bad(() => DatasetReaders.ReadCiteulike(dir.Path), 0, "is a directory");
    }
}

public class MovielensReaderTests
{
    [Fact]
    public void Reads_u_data_tab_separated()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadMovielens(dir.Write("u.data", "196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n"));
        Assert.Equal(new (long, long)[] { (196, 242), (186, 302) }, Expect.Pairs(d));
        Assert.Equal(3.5f, d.Interactions[1].Rating);
        Assert.Equal(891717742L, d.Interactions[1].Timestamp);
    }

    [Fact]
    public void Reads_ratings_dat_double_colon_with_crlf()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadMovielens(dir.Write("ratings.dat", "1::1193::5::978300760\r\n1::661::3::978302109\r\n\r\n"));
        Assert.Equal(new (long, long)[] { (1, 1193), (1, 661) }, Expect.Pairs(d));
        Assert.Equal(5f, d.Interactions[0].Rating);
        Assert.Equal(978302109L, d.Interactions[1].Timestamp);
        Assert.Equal(1, d.Skipped["blank lines"]);
    }

    [Fact]
    public void Reads_ratings_csv_with_header()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadMovielens(dir.Write("ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n"));
        Assert.Equal(new (long, long)[] { (1, 31) }, Expect.Pairs(d));
        Assert.Equal(1, d.Skipped["header lines"]);
    }

    [Theory]
    [InlineData("1::2::5::9\n1::3::4\n", 2, "found 3 field(s)")]
    [InlineData("1\t2\t5\n", 1, "expected 4 fields")]
    [InlineData("1::2::abc::9\n", 1, "rating 'abc'")]
    [InlineData("1::2::NaN::9\n", 1, "finite")]
    [InlineData("1::2::5::soon\n", 1, "timestamp 'soon'")]
    [InlineData("1::2::5::9\n1::2::5::9::\n", 2, "found 5")]
    public void Malformed_lines(string text, long line, string reason)
    {
        using var dir = new TempDir();
        string p = dir.Write("ratings.dat", text);
        Expect.Bad(() => DatasetReaders.ReadMovielens(p), line, reason);
    }
}

public class DelimitedReaderTests
{
    [Fact]
    public void Detects_header_and_comma()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadDelimited(dir.Write("x.csv", "user,item,rating\n1,2,5\n3, 4 ,1\n"));
        Assert.Equal(new (long, long)[] { (1, 2), (3, 4) }, Expect.Pairs(d));
        Assert.Equal(new float?[] { 5, 1 }, d.Interactions.Select(r => r.Rating));
        Assert.Equal(new long[] { 2, 3 }, d.Interactions.Select(r => r.Line));
        Assert.Equal(1, d.Skipped["header lines"]);
    }

    [Theory]
    [InlineData("1;2\n3;4\n")]
    [InlineData("1\t2\n3\t4\n")]
    [InlineData("1  2\n 3 4 \n")]
    [InlineData("1,2\r\n3,4\r\n\r\n")]
    public void Detects_delimiters_two_columns(string text)
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadDelimited(dir.Write("x.txt", text));
        Assert.Equal(new (long, long)[] { (1, 2), (3, 4) }, Expect.Pairs(d));
        Assert.All(d.Interactions, r => { Assert.Null(r.Rating); Assert.Null(r.Timestamp); });
    }

    [Fact]
    public void Given_delimiter_and_forced_header()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadDelimited(dir.Write("x.tsv", "7\t8\n1\t2\n"), delimiter: "tab", header: true);
        Assert.Equal(new (long, long)[] { (1, 2) }, Expect.Pairs(d));
        var e = DatasetReaders.ReadDelimited(dir.Write("y.txt", "1|2|3\n"), delimiter: "|");
        Assert.Equal(3f, e.Interactions[0].Rating);
    }

    [Theory]
    [InlineData("01/02/2020")]
    [InlineData("13/02/2020")]
    [InlineData("2-1-2020")]
    [InlineData("01.02.2020")]
    [InlineData("01/02/20")]
    [InlineData("01/02/2020 10:00")]
    public void Dates_with_the_year_last_are_refused_as_ambiguous(string date)
    {
        using var dir = new TempDir();
        string path = dir.Write("d.csv", $"1,2,4,2020-01-02\n1,3,1,{date}\n");
        var e = Expect.Bad(() => DatasetReaders.ReadDelimited(path), 2, "year last");
        Assert.Contains(date, e.Reason);
        Assert.Contains("ISO 8601", e.Reason);
        Assert.Contains("Unix seconds", e.Reason);
    }

    [Theory]
    [InlineData("2020-02-01", 1580515200L)]
    [InlineData("2020-02-01T10:00:00Z", 1580551200L)]
    [InlineData("2020-02-01T11:00:00+01:00", 1580551200L)]
    [InlineData("2020/02/01", 1580515200L)]
    [InlineData("1580551200.7", 1580551200L)]
    public void Iso_dates_and_unix_seconds_are_read(string value, long expected)
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadDelimited(dir.Write("d.csv", $"1,2,4,{value}\n"));
        Assert.Equal(expected, d.Interactions[0].Timestamp);
    }

    [Fact]
    public void A_csv_read_as_lightgcn_is_an_error_that_suggests_csv()
    {
        using var dir = new TempDir();
        string csv = dir.Write("d.csv", "user item\n" + string.Concat(Enumerable.Range(0, 20).Select(k => $"{k % 4},{k}\n")));
        var e = Expect.Bad(() => DatasetReaders.ReadLightgcn(csv), 0, "20 of its 21 lines have a user and no items");
        Assert.Contains("separated by comma: try --format csv", e.Reason);
        string words = dir.Write("w.txt", "a b\nc\nd\ne\n");
        Expect.Bad(() => DatasetReaders.ReadLightgcn(words), 0, "is the format (--format) right?");
        // Half or fewer: skipped and counted, as before.
        var d = DatasetReaders.ReadLightgcn(dir.Write("half.txt", "1 2 3\n4\n"));
        Assert.Equal(2, d.Interactions.Count);
        Assert.Equal(1, d.Skipped["lines with a user and no items"]);
    }

    [Fact]
    public void Four_columns_with_dates()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadDelimited(dir.Write("x.csv", "1,2,4.5,2020-01-02T00:00:00Z\n1,3,1,1577923200\n"));
        Assert.Equal(1577923200L, d.Interactions[0].Timestamp);
        Assert.Equal(1577923200L, d.Interactions[1].Timestamp);
    }

    [Theory]
    [InlineData("1,2,3\n4,5\n", null, 2, "found 2 field(s)")]
    [InlineData("1,2,3,4,5\n", null, 1, "expected 2 to 4 fields")]
    [InlineData("1\n", null, 1, "expected 2 to 4 fields")]
    [InlineData("user,item\n", null, 1, "only a header")]
    [InlineData("1,,3\n", null, 1, "item id is empty")]
    [InlineData("1,2,\n", null, 1, "rating is empty")]
    [InlineData("u,i\nU1,\"I1\n", null, 2, "a quoted field is never closed")]
    [InlineData("U1,I1\nU2,I\"2\nU3,I3\n", null, 2, "a quote inside the unquoted field 'I\"2")]
    [InlineData("U1,I1\n\"U2\"x,I2\n", null, 2, "text after the closing quote")]
    [InlineData("U1,I1\nU2,\"a\nb\"\n", null, 2, "item id 'a?b' holds a control character")]
    [InlineData("U1,I1,5\n\"U2\",\"I2\",\"\"\n", null, 2, "rating is empty")]
    public void Malformed(string text, bool? header, long line, string reason)
    {
        using var dir = new TempDir();
        string p = dir.Write("x.csv", text);
        Expect.Bad(() => DatasetReaders.ReadDelimited(p, header: header), line, reason);
    }

    [Fact]
    public void Blank_only_file_is_whole_file_error()
    {
        using var dir = new TempDir();
        Expect.Bad(() => DatasetReaders.ReadDelimited(dir.Write("x.csv", "\r\n  \n")), 0, "only blank lines");
    }
}

public class LightgcnReaderTests
{
    [Fact]
    public void Reads_user_item_lists()
    {
        using var dir = new TempDir();
        var d = DatasetReaders.ReadLightgcn(dir.Write("train.txt", "0 1 2 3\n1 4\n\n2\n5 1\n"));
        Assert.Equal(new (long, long)[] { (0, 1), (0, 2), (0, 3), (1, 4), (5, 1) }, Expect.Pairs(d));
        Assert.Equal(1, d.Skipped["blank lines"]);
        Assert.Equal(1, d.Skipped["lines with a user and no items"]);
    }

    [Theory]
    [InlineData("0 1\nu\u007f 1\n", 2, "user id 'u?' holds a control character")]
    public void Malformed(string text, long line, string reason)
    {
        using var dir = new TempDir();
        string p = dir.Write("train.txt", text);
        Expect.Bad(() => DatasetReaders.ReadLightgcn(p), line, reason);
    }
}

public class PreSplitReaderTests
{
    [Fact]
    public void Reads_pair_files_with_rating()
    {
        using var dir = new TempDir();
        dir.Write("train.txt", "0 0 1\n0 1 1\n1 0 1\n");
        dir.Write("valid.txt", "0 2 1\n");
        dir.Write("test.txt", "1 2 1\n1 3 1\n");
        var s = DatasetReaders.ReadPreSplit(dir.Path);
        Assert.Equal(new (long, long)[] { (0, 0), (0, 1), (1, 0) }, Expect.Pairs(s.Train));
        Assert.Equal(new (long, long)[] { (0, 2) }, Expect.Pairs(s.Valid!));
        Assert.Equal(new (long, long)[] { (1, 2), (1, 3) }, Expect.Pairs(s.Test));
        Assert.Equal(1f, s.Train.Interactions[0].Rating);
    }

    [Fact]
    public void Reads_lightgcn_files_and_val_txt_and_ambiguous_follows_decisive()
    {
        using var dir = new TempDir();
        dir.Write("train.txt", "0 1 2 3\n1 2 5\n");
        dir.Write("val.txt", "0 4 7\n");
        dir.Write("test.txt", "0 9\n1 8\n");
        var s = DatasetReaders.ReadPreSplit(dir.Path);
        Assert.Equal(new (long, long)[] { (0, 1), (0, 2), (0, 3), (1, 2), (1, 5) }, Expect.Pairs(s.Train));
        Assert.Equal(new (long, long)[] { (0, 4), (0, 7) }, Expect.Pairs(s.Valid!));
        Assert.Equal(new (long, long)[] { (0, 9), (1, 8) }, Expect.Pairs(s.Test));
        Assert.Null(s.Train.Interactions[0].Rating);
    }

    [Fact]
    public void Three_fields_with_one_line_per_user_read_as_lists()
    {
        using var dir = new TempDir();
        dir.Write("train.txt", "0 5 7\n1 3 9\n2 4 8\n");
        dir.Write("test.txt", "0 6\n1 2\n");
        var s = DatasetReaders.ReadPreSplit(dir.Path);
        Assert.Equal(6, s.Train.Interactions.Count);
        Assert.Null(s.Valid);
        Assert.Equal(new (long, long)[] { (0, 6), (1, 2) }, Expect.Pairs(s.Test));
    }

    [Fact]
    public void A_user_on_several_lines_in_any_file_means_pairs_everywhere()
    {
        using var dir = new TempDir();
        dir.Write("train.txt", "0 5 7\n1 3 9\n2 4 8\n");
        dir.Write("test.txt", "0 6 2\n0 1 5\n");
        var s = DatasetReaders.ReadPreSplit(dir.Path);
        Assert.Equal(new (long, long)[] { (0, 5), (1, 3), (2, 4) }, Expect.Pairs(s.Train));
        Assert.Equal(new float?[] { 7, 9, 8 }, s.Train.Interactions.Select(r => r.Rating));
        Assert.Equal(new float?[] { 2, 5 }, s.Test.Interactions.Select(r => r.Rating));
    }

    [Fact]
    public void Directory_problems()
    {
        using var dir = new TempDir();
        Expect.Bad(() => DatasetReaders.ReadPreSplit(Path.Combine(dir.Path, "none")), 0, "does not exist");
        string file = dir.Write("f.txt", "0 1\n");
        Expect.Bad(() => DatasetReaders.ReadPreSplit(file), 0, "expected a directory");
        string d = dir.Sub("ds");
        File.WriteAllText(Path.Combine(d, "train.txt"), "0 1\n");
        var e = Expect.Bad(() => DatasetReaders.ReadPreSplit(d), 0, "does not exist");
        Assert.EndsWith("test.txt", e.FilePath);
        File.WriteAllText(Path.Combine(d, "test.txt"), "0 2\n");
        File.WriteAllText(Path.Combine(d, "valid.txt"), "0 3\n");
        File.WriteAllText(Path.Combine(d, "val.txt"), "0 3\n");
        Expect.Bad(() => DatasetReaders.ReadPreSplit(d), 0, "both valid.txt and val.txt");
        File.Delete(Path.Combine(d, "val.txt"));
        File.WriteAllText(Path.Combine(d, "valid.txt"), "");
        e = Expect.Bad(() => DatasetReaders.ReadPreSplit(d), 0, "empty");
        Assert.EndsWith("valid.txt", e.FilePath);
        File.WriteAllText(Path.Combine(d, "valid.txt"), "0 3 1\n0 4\n");
        Expect.Bad(() => DatasetReaders.ReadPreSplit(d), 2, "found 2 field(s)");
    }
}
