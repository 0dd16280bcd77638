function Invoke-PhotoBulkRpc {
    <#
    .SYNOPSIS
    Sends one JSON-RPC request to the photobulk sidecar and returns its result. The only code that touches the pipe.
    .DESCRIPTION
    On first use it starts `photobulk serve --pipe <random name>` (the binary next to the module, in its bin folder,
    or on PATH), reads its start line ({"status":"started"|"failed",...}), connects a NamedPipeClientStream and sends
    initialize. Messages are newline-delimited JSON. Notifications that arrive before the response are passed to
    -OnNotification (method, params). An error response is thrown as an ErrorRecord whose FullyQualifiedErrorId is
    PhotoBulk.<data.kind>. The `shutdown` method also closes the pipe.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$Method,
        [System.Collections.IDictionary]$Params = @{},
        [scriptblock]$OnNotification
    )
    if (-not $script:Sidecar -or -not $script:Sidecar.Pipe.IsConnected) {
        if ($Method -eq 'shutdown') { $script:Sidecar = $null; return }
        $candidates = foreach ($dir in @($script:ModuleRoot, (Join-Path $script:ModuleRoot 'bin'))) { Join-Path $dir 'photobulk.exe'; Join-Path $dir 'photobulk' }
        $exe = $candidates | Where-Object { Test-Path -LiteralPath $_ -PathType Leaf } | Select-Object -First 1
        if (-not $exe) {
            $cmd = Get-Command -Name 'photobulk' -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
            if (-not $cmd) { throw 'photobulk binary not found next to the module or on PATH' }
            $exe = $cmd.Source
        }
        $pipeName = 'PhotoBulk-' + [guid]::NewGuid().ToString('N')
        $log = Join-Path ([System.IO.Path]::GetTempPath()) "$pipeName.log"
        $psi = New-Object System.Diagnostics.ProcessStartInfo -Property @{
            FileName = $exe; Arguments = "serve --pipe $pipeName --log-file `"$log`""; UseShellExecute = $false; RedirectStandardOutput = $true; CreateNoWindow = $true
        }
        $process = [System.Diagnostics.Process]::Start($psi)
        $startLine = $process.StandardOutput.ReadLine()
        if (-not $startLine) { throw "photobulk serve exited without a start line (log: $log)" }
        $start = $startLine | ConvertFrom-Json
        if ($start.status -ne 'started') { throw "photobulk serve failed to start: $($start.reason)" }
        $pipe = New-Object System.IO.Pipes.NamedPipeClientStream('.', $pipeName, [System.IO.Pipes.PipeDirection]::InOut)
        $pipe.Connect(10000)
        $utf8 = New-Object System.Text.UTF8Encoding($false)
        $writer = New-Object System.IO.StreamWriter($pipe, $utf8) -Property @{ AutoFlush = $true; NewLine = "`n" }
        $script:Sidecar = @{ Process = $process; Pipe = $pipe; Writer = $writer; Reader = (New-Object System.IO.StreamReader($pipe, $utf8)); NextId = 0; Log = $log }
        $init = [ordered]@{ protocolVersion = 1; clientName = 'PhotoBulk'; clientVersion = '0.1.0' }
        $null = Invoke-PhotoBulkRpc -Method 'initialize' -Params $init
    }
    $script:Sidecar.NextId++
    $id = $script:Sidecar.NextId
    $request = [ordered]@{ jsonrpc = '2.0'; id = $id; method = $Method; params = $Params }
    $script:Sidecar.Writer.WriteLine((ConvertTo-Json -InputObject $request -Compress -Depth 10))
    while ($true) {
        $line = $script:Sidecar.Reader.ReadLine()
        if ($null -eq $line) {
            $script:Sidecar = $null
            if ($Method -eq 'shutdown') { return }
            throw 'the photobulk sidecar closed the connection'
        }
        $message = $line | ConvertFrom-Json
        if ($message.PSObject.Properties['method']) {
            if ($OnNotification) { & $OnNotification $message.method $message.params }
            continue
        }
        if ($message.id -ne $id) { continue }
        if ($Method -eq 'shutdown') { $script:Sidecar.Pipe.Dispose(); $script:Sidecar = $null }
        if ($message.PSObject.Properties['error'] -and $message.error) {
            $kind = $(if ($message.error.data) { $message.error.data.kind } else { 'internal_error' })
            $exception = New-Object System.InvalidOperationException($message.error.message)
            throw (New-Object System.Management.Automation.ErrorRecord($exception, "PhotoBulk.$kind", 'NotSpecified', $Method))
        }
        return $message.result
    }
}

function ConvertTo-PhotoBulkConnect {
    # directory.connect params from the cmdlets' connection parameters; the password goes only into the pipe.
    param([string]$Server, [string]$SearchBase, [pscredential]$Credential, [string]$CaFile, [string]$BackupPath)
    if (-not $Server) { throw 'give -Server (a domain controller host name or an ldaps:// URL)' }
    $url = $Server
    if ($url -notmatch '://') { $url = "ldaps://$Server" }
    $connect = [ordered]@{ server = $url }
    if ($SearchBase) { $connect.base = $SearchBase }
    if ($Credential -and $Credential -ne [pscredential]::Empty) { $connect.bind = $Credential.UserName; $connect.password = $Credential.GetNetworkCredential().Password }
    if ($CaFile) { $connect.caFile = (Resolve-Path -LiteralPath $CaFile).ProviderPath }
    if ($BackupPath) { $connect.backupDir = $BackupPath }
    $connect
}

function ConvertTo-PhotoBulkGraphConnect {
    # graph.connect params; the client secret or the token goes only into the pipe.
    param([string]$TenantId, [pscredential]$ClientCredential, [string]$CertificatePath, [securestring]$AccessToken, [string]$Environment, [string]$GraphUrl, [string]$BackupPath)
    $connect = [ordered]@{ cloud = $Environment.ToLowerInvariant() }
    if ($AccessToken) { $connect.accessToken = (New-Object System.Net.NetworkCredential('', $AccessToken)).Password }
    elseif ($TenantId -and $ClientCredential) {
        $connect.tenant = $TenantId; $connect.clientId = $ClientCredential.UserName
        if ($CertificatePath) { $connect.certificateFile = (Resolve-Path -LiteralPath $CertificatePath).ProviderPath }
        else { $connect.clientSecret = $ClientCredential.GetNetworkCredential().Password }
    }
    else { throw 'Target ExchangeOnline needs -AccessToken, or -TenantId with -ClientCredential (client id and secret, or with -CertificatePath)' }
    if ($GraphUrl) { $connect.graphUrl = $GraphUrl }
    if ($BackupPath) { $connect.backupDir = Join-Path $BackupPath 'graph' }
    $connect
}

function Write-PhotoBulkItemError {
    # One non-terminating error per failed user, with a category and the result as TargetObject.
    param($ItemError, $Target)
    $categories = @{
        user_not_found = 'ObjectNotFound'; ambiguous_user = 'InvalidResult'; access_denied = 'PermissionDenied'
        invalid_credentials = 'AuthenticationError'; image_invalid = 'InvalidData'; duplicate = 'InvalidArgument'
        no_account = 'InvalidArgument'; unavailable = 'ResourceUnavailable'; photo_too_large = 'LimitsExceeded'
        no_mailbox = 'ObjectNotFound'; graph_auth = 'AuthenticationError'; photo_rejected = 'InvalidData'
    }
    $category = 'WriteError'
    if ($categories.ContainsKey([string]$ItemError.kind)) { $category = $categories[[string]$ItemError.kind] }
    Write-Error -Message $ItemError.message -Category $category -ErrorId "PhotoBulk.$($ItemError.kind)" -TargetObject $Target
}
