using System.ComponentModel;
using System.Reflection;
using Spectre.Console.Cli;
using Spectre.Console.Cli.Help;
using Spectre.Console.Rendering;

namespace RecDistill.Cli;

/// <summary>
/// Spectre's help, less the options a command does not take ([NotTaken]) and with inherited options'
/// texts as they hold for that command ([OptionText]): settings classes share options by inheritance,
/// but each command's --help lists only what it accepts.
/// </summary>
public sealed class CommandHelp(ICommandAppSettings settings, IReadOnlyDictionary<string, Type> commands) : HelpProvider(settings)
{
    public override IEnumerable<IRenderable> GetOptions(ICommandModel model, ICommandInfo? command) =>
        base.GetOptions(model, command is not null && commands.TryGetValue(command.Name, out var type) ? new CommandView(command, type) : command);

    private sealed class CommandView(ICommandInfo inner, Type settings) : ICommandInfo
    {
        private readonly IReadOnlyList<ICommandParameter> _parameters = View(inner, settings);

        private static List<ICommandParameter> View(ICommandInfo inner, Type settings)
        {
            var notTaken = StrictArguments.NotTaken(settings);
            var texts = settings.GetCustomAttributes<OptionTextAttribute>().ToDictionary(a => a.Option, a => a.Text);
            var result = new List<ICommandParameter>();
            foreach (var p in inner.Parameters)
            {
                if (p is not ICommandOption o) { result.Add(p); continue; }
                var names = o.LongNames.Select(n => "--" + n).ToList();
                if (names.Any(notTaken.Contains)) continue;
                var text = names.Select(n => texts.GetValueOrDefault(n)).FirstOrDefault(t => t is not null);
                result.Add(text is null ? o : new OptionView(o, text));
            }
            return result;
        }

        public string Name => inner.Name;
        public string? Description => inner.Description;
        public bool IsBranch => inner.IsBranch;
        public bool IsDefaultCommand => inner.IsDefaultCommand;
        public bool IsHidden => inner.IsHidden;
        public IReadOnlyList<ICommandParameter> Parameters => _parameters;
        public ICommandInfo? Parent => inner.Parent;
        public IReadOnlyList<string[]> Examples => inner.Examples;
        public IReadOnlyList<ICommandInfo> Commands => inner.Commands;
        public ICommandInfo? DefaultCommand => inner.DefaultCommand;
    }

    private sealed class OptionView(ICommandOption inner, string description) : ICommandOption
    {
        public bool IsFlag => inner.IsFlag;
        public bool IsRequired => inner.IsRequired;
        public string? Description => description;
        public DefaultValueAttribute? DefaultValue => inner.DefaultValue;
        public bool IsHidden => inner.IsHidden;
        public IReadOnlyList<string> LongNames => inner.LongNames;
        public IReadOnlyList<string> ShortNames => inner.ShortNames;
        public string? ValueName => inner.ValueName;
        public bool ValueIsOptional => inner.ValueIsOptional;
    }
}
