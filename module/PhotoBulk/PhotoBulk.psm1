# PhotoBulk: dot-source Private/ then Public/; export only the public functions (see the psd1).
$script:ModuleRoot = $PSScriptRoot
$script:Sidecar = $null
foreach ($folder in @('Private', 'Public')) {
    foreach ($file in Get-ChildItem -Path (Join-Path $PSScriptRoot $folder) -Filter '*.ps1' -ErrorAction SilentlyContinue) {
        . $file.FullName
    }
}
$MyInvocation.MyCommand.ScriptBlock.Module.OnRemove = {
    if ($script:Sidecar) { try { $null = Invoke-PhotoBulkRpc -Method 'shutdown' } catch { Write-Verbose "sidecar shutdown: $_" } }
}
Export-ModuleMember -Function 'Set-PhotoBulk', 'Get-PhotoReport', 'Remove-PhotoBulk', 'Restore-PhotoBulk'
