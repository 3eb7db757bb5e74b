using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace RecDistill.Analyzers;

/// <summary>
/// Rejects the TorchSharp Scalar lifetime hazard at build time.
///
/// A <c>TorchSharp.Scalar</c> owns a native object and frees it in its finalizer. Once the handle
/// has been read and passed to libtorch, nothing keeps the managed Scalar reachable, so the
/// finalizer may free the native object while libtorch is still reading it ("Unknown scalar
/// type", "toFloat" assertions, or silently wrong values). Two rules follow:
///
/// RD0001: a Scalar may be created (a conversion to Scalar, or a TorchSharp member returning a
/// new Scalar) only where it is held: the initializer of a <c>using</c> declaration or statement,
/// or of a static readonly field or static get-only auto-property (alive for the process).
///
/// RD0002: a TorchSharp member that creates a Scalar inside its own body (an implicit alpha of
/// 1, a bound, a number converted for the caller) may not be called. The list of those members
/// comes from scanning TorchSharp's IL (build/scalar-scan.cs) into an additional file named
/// <c>ScalarCreatingMembers.txt</c>: one documentation id a line, optionally <c>;advice</c>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ScalarLifetimeAnalyzer : DiagnosticAnalyzer
{
    public const string CreatedId = "RD0001";
    public const string MemberId = "RD0002";
    public const string ListFileName = "ScalarCreatingMembers.txt";

    private static readonly DiagnosticDescriptor Created = new(
        CreatedId,
        "TorchSharp Scalar created where nothing holds it",
        "A TorchSharp Scalar is created here ({0}) and nothing holds it while libtorch reads it: use FixedScalars.Of(value), a static readonly field, or 'using Scalar s = value;' before the call",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true,
        description: "The Scalar's finalizer can free it while a native call still reads it.");

    private static readonly DiagnosticDescriptor Member = new(
        MemberId,
        "TorchSharp member creates a Scalar internally",
        "'{0}' creates a TorchSharp Scalar inside TorchSharp that its finalizer can free mid-call{1}",
        "Reliability", DiagnosticSeverity.Error, isEnabledByDefault: true,
        description: "Listed in ScalarCreatingMembers.txt, generated from TorchSharp's IL by build/scalar-scan.cs.");

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Created, Member);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var scalar = start.Compilation.GetTypeByMetadataName("TorchSharp.Scalar");
            if (scalar is null) return; // a project without TorchSharp
            var banned = ReadList(start.Options.AdditionalFiles, start.Compilation, start.CancellationToken);

            start.RegisterOperationAction(c => CheckCreation(c, scalar),
                OperationKind.Conversion, OperationKind.Invocation, OperationKind.ObjectCreation, OperationKind.MethodReference);
            // A foreach's element conversion is not an operation of the tree: it is read from the statement.
            start.RegisterSyntaxNodeAction(c => CheckForEach(c, scalar, banned), SyntaxKind.ForEachStatement);
            if (banned.Count > 0)
                start.RegisterOperationAction(c => CheckMember(c, banned),
                    OperationKind.Invocation, OperationKind.ObjectCreation, OperationKind.Binary,
                    OperationKind.Unary, OperationKind.CompoundAssignment, OperationKind.Conversion,
                    OperationKind.Increment, OperationKind.Decrement, OperationKind.PropertyReference,
                    OperationKind.MethodReference);
        });
    }

    private static Dictionary<ISymbol, string> ReadList(ImmutableArray<AdditionalText> files, Compilation compilation, System.Threading.CancellationToken ct)
    {
        var result = new Dictionary<ISymbol, string>(SymbolEqualityComparer.Default);
        foreach (var file in files)
        {
            if (!string.Equals(Path.GetFileName(file.Path), ListFileName, StringComparison.OrdinalIgnoreCase)) continue;
            var text = file.GetText(ct);
            if (text is null) continue;
            foreach (var raw in text.Lines)
            {
                string line = raw.ToString().Trim();
                if (line.Length == 0 || line[0] == '#') continue;
                int semi = line.IndexOf(';');
                string id = semi < 0 ? line : line.Substring(0, semi).Trim();
                string advice = semi < 0 ? "" : line.Substring(semi + 1).Trim();
                foreach (var symbol in DocumentationCommentId.GetSymbolsForDeclarationId(id, compilation))
                    result[symbol] = advice;
            }
        }
        return result;
    }

    private static void CheckCreation(OperationAnalysisContext c, INamedTypeSymbol scalar)
    {
        string? what = c.Operation switch
        {
            IConversionOperation conv when conv.Conversion.IsUserDefined
                && SymbolEqualityComparer.Default.Equals(conv.Type, scalar)
                => $"{conv.Operand.Type?.ToDisplayString() ?? "a value"} converted to Scalar",
            IInvocationOperation inv when SymbolEqualityComparer.Default.Equals(inv.TargetMethod.ReturnType, scalar)
                && SymbolEqualityComparer.Default.Equals(inv.TargetMethod.ContainingAssembly, scalar.ContainingAssembly)
                => $"{inv.TargetMethod.Name} returns a new Scalar",
            IObjectCreationOperation obj when SymbolEqualityComparer.Default.Equals(obj.Type, scalar)
                => "new Scalar",
            // A delegate to ToScalar creates a Scalar at each call, where nothing can hold it.
            IMethodReferenceOperation mref when SymbolEqualityComparer.Default.Equals(mref.Method.ReturnType, scalar)
                && SymbolEqualityComparer.Default.Equals(mref.Method.ContainingAssembly, scalar.ContainingAssembly)
                => $"a delegate to {mref.Method.Name}, which returns a new Scalar at each call",
            _ => null,
        };
        if (what is null || IsHeld(c.Operation)) return;
        c.ReportDiagnostic(Diagnostic.Create(Created, c.Operation.Syntax.GetLocation(), what));
    }

    /// <summary>
    /// Held: the value of the initializer of a using declaration or statement, or of a static readonly
    /// field or static get-only auto-property (a static readonly backing field): the whole initializer,
    /// or one of the values a conditional, ?? or switch expression there yields.
    /// </summary>
    private static bool IsHeld(IOperation op)
    {
        var parent = op.Parent;
        while (parent is IConditionalOperation or ICoalesceOperation or ISwitchExpressionArmOperation or ISwitchExpressionOperation
            || parent is IConversionOperation { Conversion.IsUserDefined: false })
        {
            if (parent is IConditionalOperation conditional && ReferenceEquals(conditional.Condition, op)) return false;
            if (parent is ISwitchExpressionArmOperation arm && !ReferenceEquals(arm.Value, op)) return false;
            if (parent is ISwitchExpressionOperation sw && ReferenceEquals(sw.Value, op)) return false;
            op = parent;
            parent = op.Parent;
        }
        if (parent is IFieldInitializerOperation field)
            return field.InitializedFields.All(f => f.IsStatic && f.IsReadOnly);
        if (parent is IPropertyInitializerOperation property)
            return property.InitializedProperties.All(p => p.IsStatic && p.SetMethod is null);
        if (parent is IVariableInitializerOperation init
            && init.Parent is IVariableDeclaratorOperation
            && init.Parent.Parent is IVariableDeclarationOperation declaration
            && declaration.Parent is IVariableDeclarationGroupOperation group)
            return group.Parent is IUsingDeclarationOperation or IUsingOperation;
        return false;
    }

    /// <summary>
    /// <c>foreach (Scalar s in numbers)</c> converts each element (RD0001: the loop variable is a local,
    /// which does not hold it), and <c>foreach (float f in tensors)</c> calls a listed conversion (RD0002).
    /// </summary>
    private static void CheckForEach(SyntaxNodeAnalysisContext c, INamedTypeSymbol scalar, Dictionary<ISymbol, string> banned)
    {
        var loop = (ForEachStatementSyntax)c.Node;
        var conversion = c.SemanticModel.GetForEachStatementInfo(loop).ElementConversion;
        if (!conversion.IsUserDefined || conversion.MethodSymbol is not { } method) return;
        var location = loop.Type.GetLocation();
        if (SymbolEqualityComparer.Default.Equals(method.ReturnType, scalar))
            c.ReportDiagnostic(Diagnostic.Create(Created, location,
                $"each element of the foreach, {method.Parameters.FirstOrDefault()?.Type.ToDisplayString() ?? "a value"}, converted to Scalar"));
        if (Lookup(banned, method, out var advice))
            c.ReportDiagnostic(Diagnostic.Create(Member, location,
                method.ToDisplayString(SymbolDisplayFormat.CSharpShortErrorMessageFormat), advice.Length == 0 ? "" : ": " + advice));
    }

    private static void CheckMember(OperationAnalysisContext c, Dictionary<ISymbol, string> banned)
    {
        ISymbol? symbol = c.Operation switch
        {
            IInvocationOperation inv => inv.TargetMethod,
            IObjectCreationOperation obj => obj.Constructor,
            IBinaryOperation bin => bin.OperatorMethod,
            IUnaryOperation un => un.OperatorMethod,
            ICompoundAssignmentOperation ca => ca.OperatorMethod,
            IIncrementOrDecrementOperation inc => inc.OperatorMethod,
            IConversionOperation conv => conv.OperatorMethod,
            IPropertyReferenceOperation prop => prop.Property,
            IMethodReferenceOperation mref => mref.Method,
            _ => null,
        };
        if (symbol is null) return;
        if (!Lookup(banned, symbol, out var advice)) return;
        string name = symbol.ToDisplayString(SymbolDisplayFormat.CSharpShortErrorMessageFormat);
        c.ReportDiagnostic(Diagnostic.Create(Member, c.Operation.Syntax.GetLocation(), name,
            advice.Length == 0 ? "" : ": " + advice));
    }

    private static bool Lookup(Dictionary<ISymbol, string> banned, ISymbol symbol, out string advice)
    {
        if (banned.TryGetValue(symbol, out advice!)) return true;
        if (banned.TryGetValue(symbol.OriginalDefinition, out advice!)) return true;
        if (symbol is IMethodSymbol m && m.ReducedFrom is { } reduced && banned.TryGetValue(reduced.OriginalDefinition, out advice!)) return true;
        advice = "";
        return false;
    }
}
