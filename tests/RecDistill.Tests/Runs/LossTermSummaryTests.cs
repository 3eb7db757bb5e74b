using RecDistill.Cli;
using RecDistill.Runs;

namespace RecDistill.Tests.Runs;

public class LossTermSummaryTests
{
    private static string Run(string history)
    {
        var dir = TestData.TempDir();
        File.WriteAllText(Path.Combine(dir, RunDirectory.HistoryFile), history);
        return dir;
    }

    // Six epochs, two terms and a column without its pair (loss_x): phases 1-2, 3-4, 5-6.
    private const string Six = """
        epoch,loss,seconds,valid_ndcg20,grad_a,grad_b,loss_a,loss_b,loss_x
        1,0,1,,1,3,10,100,5
        2,0,1,,3,5,20,200,5
        3,0,1,0.1,2,2,30,300,5
        4,0,1,,2,6,40,400,5
        5,0,1,,0,0,50,500,5
        6,0,1,0.2,4,12,60,600,5
        """;

    [Fact]
    public void Thirds_of_the_run_give_each_terms_mean_loss_gradient_and_share()
    {
        var s = LossTermSummary.Read(Run(Six));
        Assert.Equal(6, s.Epochs);
        Assert.Equal(["a", "b"], s.Terms);
        Assert.Equal([(1, 2), (3, 4), (5, 6)], s.Phases);
        // Phase 1: gradients a 2, b 4 (shares 1/3, 2/3); losses 15 and 150.
        Assert.Equal(new LossTermPhase("a", 15, 2, 1.0 / 3), s.ByPhase[0][0]);
        Assert.Equal(new LossTermPhase("b", 150, 4, 2.0 / 3), s.ByPhase[0][1]);
        // Phase 2: a 2, b 4 again; phase 3: a 2, b 6 (shares 1/4, 3/4).
        Assert.Equal(0.25, s.ByPhase[2][0].GradientShare, 12);
        Assert.Equal(550, s.ByPhase[2][1].Loss, 12);
        var md = s.ToMarkdown();
        Assert.Contains("| term | epochs 1-2 | epochs 3-4 | epochs 5-6 |", md);
        Assert.Contains("| b | 150 / 4 (66.7 %) |", md);
    }

    [Fact]
    public void One_phase_averages_the_whole_run()
    {
        var s = LossTermSummary.Read(Run(Six), phases: 1);
        Assert.Equal([(1, 6)], s.Phases);
        Assert.Equal(2, s.ByPhase[0][0].Gradient, 12);   // (1 + 3 + 2 + 2 + 0 + 4) / 6
        Assert.Equal(14.0 / 3, s.ByPhase[0][1].Gradient, 12); // (3 + 5 + 2 + 6 + 0 + 12) / 6
        Assert.Equal(2 / (2 + 14.0 / 3), s.ByPhase[0][0].GradientShare, 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => LossTermSummary.Read(Run(Six), phases: 0));
    }

    [Fact]
    public void A_two_epoch_run_has_two_phases()
    {
        var s = LossTermSummary.Read(Run("epoch,grad_a,loss_a\n1,1,2\n2,3,4\n"));
        Assert.Equal([(1, 1), (2, 2)], s.Phases);
        Assert.Equal(1.0, s.ByPhase[1][0].GradientShare);
    }

    [Fact]
    public void Missing_file_no_terms_and_bad_numbers_name_the_file_and_line()
    {
        var empty = TestData.TempDir();
        Assert.Contains("history.csv: not found", Assert.Throws<UserErrorException>(() => LossTermSummary.Read(empty)).Message);
        var scratch = Run("epoch,loss,seconds,valid_ndcg20\n1,2,3,\n");
        Assert.Contains("history.csv:1: no loss_TERM and grad_TERM columns", Assert.Throws<UserErrorException>(() => LossTermSummary.Read(scratch)).Message);
        var bad = Run("epoch,grad_a,loss_a\n1,1,2\n2,x,4\n");
        Assert.Contains("history.csv:3: 'x' is not a number", Assert.Throws<UserErrorException>(() => LossTermSummary.Read(bad)).Message);
        var ragged = Run("epoch,grad_a,loss_a\n1,1\n");
        Assert.Contains("history.csv:2: 2 fields where the header has 3", Assert.Throws<UserErrorException>(() => LossTermSummary.Read(ragged)).Message);
    }

    [Fact]
    public void The_terms_command_prints_every_run_or_fails_before_printing()
    {
        var good = Run(Six);
        var writer = new StringWriter();
        var errors = new StringWriter();
        var oldError = Console.Error;
        Console.SetError(errors);
        var old = Spectre.Console.AnsiConsole.Console;
        Spectre.Console.AnsiConsole.Console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
            { Out = new Spectre.Console.AnsiConsoleOutput(writer) });
        Spectre.Console.AnsiConsole.Console.Profile.Width = 1000; // no wrapping inside the messages checked
        try
        {
            Assert.Equal(0, CliApp.Run(["terms", "--model", good, "--model", good]));
            Assert.Equal(2, writer.ToString().Split("| term |").Length - 1);
            writer.GetStringBuilder().Clear();
            Assert.Equal(2, CliApp.Run(["terms", "--model", good, "--model", TestData.TempDir()]));
            Assert.DoesNotContain("| term |", writer.ToString());
            Assert.Contains("not found", errors.ToString()); // errors go to standard error
            Assert.Equal(2, CliApp.Run(["terms"]));
        }
        finally
        {
            Spectre.Console.AnsiConsole.Console = old;
            Console.SetError(oldError);
        }
    }
}
