<#
.SYNOPSIS
Parses PowerShell files with PowerShell's own parser and rejects what Windows PowerShell 5.1 cannot run.
.DESCRIPTION
Every .ps1/.psm1/.psd1 under the given paths (default: module, scripts, tests; target/ and node_modules/
left out) is parsed with [System.Management.Automation.Language.Parser]::ParseFile. A file fails on any
parse error, and on syntax or parameters that exist only in PowerShell 6/7:
  ??  ??=  ?.  ?[  (null-coalescing and null-conditional operators), a ? b : c (ternary),
  && / || between pipelines (pipeline chains), clean {} blocks, ForEach-Object -Parallel,
  ConvertFrom-Json -AsHashtable/-Depth/-NoEnumerate, Get-Content/Set-Content/Add-Content -AsByteStream,
  Join-Path -AdditionalChildPath, Test-Json, and the automatic variables $IsWindows/$IsLinux/$IsMacOS
  (undefined in 5.1) outside a test that they exist.
Runs under pwsh 7 (whose parser knows the 7-only syntax, so it can name it). Exit code 1 on any finding.
.EXAMPLE
pwsh -NoProfile -File scripts/ps-check.ps1 module scripts tests
#>
[CmdletBinding()]
param([Parameter(ValueFromRemainingArguments = $true)][string[]]$Path = @('module', 'scripts', 'tests'))

function Get-Ps51Finding {
    # (line, what) for every construct Windows PowerShell 5.1 cannot run, from the tokens and the AST of one file.
    param($Ast, $Tokens)
    $tokenRules = @{
        QuestionQuestion = "'??' (null-coalescing)"; QuestionQuestionEquals = "'??=' (null-coalescing assignment)"
        QuestionDot = "'?.' (null-conditional member access)"; QuestionLBracket = "'?[' (null-conditional index)"
    }
    foreach ($t in $Tokens) {
        $kind = [string]$t.Kind
        if ($tokenRules.ContainsKey($kind)) { [pscustomobject]@{ Line = $t.Extent.StartLineNumber; What = $tokenRules[$kind] } }
    }
    $astRules = @(
        @{ Type = 'TernaryExpressionAst'; What = "'a ? b : c' (ternary)" }
        @{ Type = 'PipelineChainAst'; What = "'&&'/'||' (pipeline chain)" }
    )
    foreach ($rule in $astRules) {
        $type = "System.Management.Automation.Language.$($rule.Type)" -as [type]
        if (-not $type) { continue }
        foreach ($node in $Ast.FindAll({ param($n) $n -is $type }.GetNewClosure(), $true)) {
            [pscustomobject]@{ Line = $node.Extent.StartLineNumber; What = $rule.What }
        }
    }
    foreach ($sb in $Ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.ScriptBlockAst] }, $true)) {
        if ($sb.PSObject.Properties['CleanBlock'] -and $sb.CleanBlock) {
            [pscustomobject]@{ Line = $sb.CleanBlock.Extent.StartLineNumber; What = "'clean {}' block" }
        }
    }
    # Parameters that 5.1's cmdlets do not have (a prefix of the name is enough for PowerShell, so match prefixes).
    $parameterRules = @{
        'ForEach-Object' = @('Parallel', 'ThrottleLimit', 'AsJob'); 'ConvertFrom-Json' = @('AsHashtable', 'Depth', 'NoEnumerate')
        'Get-Content' = @('AsByteStream'); 'Set-Content' = @('AsByteStream'); 'Add-Content' = @('AsByteStream')
        'Join-Path' = @('AdditionalChildPath')
    }
    $aliases = @{ '%' = 'ForEach-Object'; 'foreach' = 'ForEach-Object'; 'gc' = 'Get-Content'; 'sc' = 'Set-Content'; 'ac' = 'Add-Content' }
    foreach ($cmd in $Ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
        $name = $cmd.GetCommandName()
        if (-not $name) { continue }
        if ($aliases.ContainsKey($name)) { $name = $aliases[$name] }
        if ($name -eq 'Test-Json') { [pscustomobject]@{ Line = $cmd.Extent.StartLineNumber; What = 'Test-Json (PowerShell 6.1+)' }; continue }
        $key = @($parameterRules.Keys | Where-Object { $_ -eq $name })
        if (-not $key) { continue }
        foreach ($p in $cmd.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
            foreach ($bad in $parameterRules[$key[0]]) {
                if ($p.ParameterName.Length -ge 2 -and $bad.StartsWith($p.ParameterName, [System.StringComparison]::OrdinalIgnoreCase)) {
                    [pscustomobject]@{ Line = $p.Extent.StartLineNumber; What = "$($key[0]) -$bad (PowerShell 6+)" }
                }
            }
        }
    }
    # $IsWindows & co. are $null in 5.1: fine inside a test such as `if ($PSVersionTable.PSEdition -eq 'Core' -and $IsLinux)`,
    # so only a use in a file that never mentions PSEdition/PSVersionTable is flagged.
    $text = $Ast.Extent.Text
    if ($text -notmatch 'PSEdition|PSVersionTable') {
        foreach ($v in $Ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.VariableExpressionAst] }, $true)) {
            if ($v.VariablePath.UserPath -in @('IsWindows', 'IsLinux', 'IsMacOS')) {
                [pscustomobject]@{ Line = $v.Extent.StartLineNumber; What = "`$$($v.VariablePath.UserPath) without a PSEdition check (undefined in 5.1)" }
            }
        }
    }
}

function Test-Ps51File {
    # Parse errors and 5.1 findings of one file, as "file:line: what" strings.
    param([string]$File)
    $tokens = $null; $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($File, [ref]$tokens, [ref]$errors)
    foreach ($e in $errors) { "${File}:$($e.Extent.StartLineNumber): parse error: $($e.Message)" }
    foreach ($f in Get-Ps51Finding -Ast $ast -Tokens $tokens) { "${File}:$($f.Line): not Windows PowerShell 5.1: $($f.What)" }
}

if ($MyInvocation.InvocationName -eq '.') { return }   # dot-sourced (the Pester tests): functions only

$extensions = @('.ps1', '.psm1', '.psd1')
$files = foreach ($p in $Path) {
    if (-not (Test-Path -LiteralPath $p)) { continue }
    Get-ChildItem -LiteralPath $p -Recurse -File | Where-Object {
        $extensions -contains $_.Extension.ToLowerInvariant() -and $_.FullName -notmatch '[\\/](target|node_modules)[\\/]'
    }
}
$files = @($files | Sort-Object FullName)
if ($files.Count -eq 0) { Write-Error 'ps-check: no PowerShell files found'; exit 1 }
$bad = 0
foreach ($f in $files) {
    $found = @(Test-Ps51File -File $f.FullName)
    foreach ($line in $found) { Write-Output $line }
    if ($found.Count) { $bad++ }
}
[Console]::Error.WriteLine("ps-check: $($files.Count) PowerShell files parsed with PowerShell $($PSVersionTable.PSVersion), $bad with findings")
if ($bad) { exit 1 }
exit 0
