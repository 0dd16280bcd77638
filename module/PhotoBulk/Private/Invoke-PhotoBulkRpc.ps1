function Invoke-PhotoBulkRpc {
    <#
    .SYNOPSIS
    Sends one JSON-RPC request to the photobulk sidecar and returns its result. With Start-/Stop-PhotoBulkSidecar
    and Read-PhotoBulkMessage, the only code that touches the pipe.
    .DESCRIPTION
    Starts the sidecar on first use. Messages are newline-delimited JSON. Notifications of this request (params.requestId)
    are passed to -OnNotification (method, params); notifications and answers of an abandoned request are dropped. An error
    answer (also one with id null, how the server refuses an oversize message) is thrown as an ErrorRecord whose
    FullyQualifiedErrorId is PhotoBulk.<data.kind>. No message for -TimeoutSeconds (default: $env:PHOTOBULK_RPC_TIMEOUT,
    else 600) ends the call with an error and the sidecar. When the call ends any other way before its answer (Ctrl+C, a
    stopped pipeline, -ErrorAction Stop in a handler), it sends $/cancelRequest and reads up to the answer, so the run stops
    between items and nothing of it reaches the next call.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$Method,
        [System.Collections.IDictionary]$Params = @{},
        [scriptblock]$OnNotification,
        [int]$TimeoutSeconds = 0,
        # Return an error answer as @{ error = @{ kind; message } } instead of throwing it (a caller's -ErrorVariable
        # would otherwise collect the caught throw once per function it passed through).
        [switch]$NoThrow
    )
    if (-not $script:Sidecar -or -not $script:Sidecar.Pipe.IsConnected) {
        if ($Method -eq 'shutdown') { Stop-PhotoBulkSidecar; return }
        Start-PhotoBulkSidecar
    }
    $sidecar = $script:Sidecar
    $sidecar.NextId++
    $id = $sidecar.NextId
    $request = [ordered]@{ jsonrpc = '2.0'; id = $id; method = $Method; params = $Params }
    $sidecar.Writer.WriteLine((ConvertTo-Json -InputObject $request -Compress -Depth 10))
    $answered = $false
    try {
        while ($true) {
            $message = Read-PhotoBulkMessage -TimeoutSeconds $TimeoutSeconds
            if ($null -eq $message) {
                $answered = $true
                Stop-PhotoBulkSidecar -Kill
                if ($Method -eq 'shutdown') { return }
                throw "the photobulk sidecar closed the connection (log: $($sidecar.Log))"
            }
            if ($message.PSObject.Properties['method']) {
                $forUs = $message.params -and $message.params.PSObject.Properties['requestId'] -and $message.params.requestId -eq $id
                if ($forUs -and $OnNotification) { & $OnNotification $message.method $message.params }
                continue
            }
            if ($null -ne $message.id -and $message.id -ne $id) { continue }
            $answered = $true
            if ($Method -eq 'shutdown') { Stop-PhotoBulkSidecar }
            if ($message.PSObject.Properties['error'] -and $message.error) {
                $kind = 'internal_error'
                if ($message.error.PSObject.Properties['data'] -and $message.error.data -and $message.error.data.kind) { $kind = $message.error.data.kind }
                if ($NoThrow) { return [pscustomobject]@{ error = [pscustomobject]@{ kind = $kind; message = $message.error.message } } }
                $exception = New-Object System.InvalidOperationException($message.error.message)
                throw (New-Object System.Management.Automation.ErrorRecord($exception, "PhotoBulk.$kind", 'NotSpecified', $Method))
            }
            return $message.result
        }
    }
    finally {
        if (-not $answered -and $script:Sidecar -eq $sidecar) {
            # Abandoned (stopped pipeline, Ctrl+C, a terminating error in a handler): cancel, then read up to the answer.
            try {
                $sidecar.Writer.WriteLine((ConvertTo-Json -InputObject ([ordered]@{ jsonrpc = '2.0'; method = '$/cancelRequest'; params = @{ id = $id } }) -Compress))
                do { $late = Read-PhotoBulkMessage -TimeoutSeconds 60 } while ($late -and ($late.PSObject.Properties['method'] -or ($null -ne $late.id -and $late.id -ne $id)))
                if (-not $late) { Stop-PhotoBulkSidecar -Kill }
            }
            catch { Stop-PhotoBulkSidecar -Kill }
        }
    }
}

function Read-PhotoBulkMessage {
    # The next message from the sidecar ($null when it closed the pipe). Waits in short slices, so Ctrl+C is honoured.
    param([int]$TimeoutSeconds)
    $sidecar = $script:Sidecar
    if ($TimeoutSeconds -le 0) { $TimeoutSeconds = 600; if ($env:PHOTOBULK_RPC_TIMEOUT) { $TimeoutSeconds = [int]$env:PHOTOBULK_RPC_TIMEOUT } }
    if (-not $sidecar.Pending) { $sidecar.Pending = $sidecar.Reader.ReadLineAsync() }
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not $sidecar.Pending.Wait(200)) {
        if ([DateTime]::UtcNow -gt $deadline) {
            Stop-PhotoBulkSidecar -Kill
            throw "the photobulk sidecar sent nothing for $TimeoutSeconds s and was stopped (log: $($sidecar.Log))"
        }
    }
    $task = $sidecar.Pending
    $sidecar.Pending = $null
    if ($task.IsFaulted -or $null -eq $task.Result) { return $null }
    $task.Result | ConvertFrom-Json
}

function Start-PhotoBulkSidecar {
    # Starts `photobulk serve --pipe <random name>` (next to the module, in its bin folder, or on PATH), reads its start
    # line ({"status":"started"|"failed",...}), connects a NamedPipeClientStream and sends initialize.
    $candidates = foreach ($dir in @($script:ModuleRoot, (Join-Path $script:ModuleRoot 'bin'))) { Join-Path $dir 'photobulk.exe'; Join-Path $dir 'photobulk' }
    $exe = $candidates | Where-Object { Test-Path -LiteralPath $_ -PathType Leaf } | Select-Object -First 1
    if ($env:PHOTOBULK_EXE) { $exe = $env:PHOTOBULK_EXE }
    if (-not $exe) {
        $cmd = Get-Command -Name 'photobulk' -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if (-not $cmd) { throw 'photobulk binary not found (PHOTOBULK_EXE, next to the module, in its bin folder, or on PATH)' }
        $exe = $cmd.Source
    }
    $pipeName = 'PhotoBulk-' + [guid]::NewGuid().ToString('N')
    $log = Join-Path ([System.IO.Path]::GetTempPath()) "$pipeName.log"
    $psi = New-Object System.Diagnostics.ProcessStartInfo -Property @{
        FileName = $exe; Arguments = "serve --pipe $pipeName --log-file `"$log`""; UseShellExecute = $false; RedirectStandardOutput = $true; CreateNoWindow = $true
    }
    $process = [System.Diagnostics.Process]::Start($psi)
    $startRead = $process.StandardOutput.ReadLineAsync()
    if (-not $startRead.Wait(30000) -or -not $startRead.Result) {
        if (-not $process.HasExited) { $process.Kill() }
        throw "photobulk serve gave no start line within 30 s (log: $log)"
    }
    $start = $startRead.Result | ConvertFrom-Json
    if ($start.status -ne 'started') { throw "photobulk serve failed to start: $($start.reason)" }
    $pipe = New-Object System.IO.Pipes.NamedPipeClientStream('.', $pipeName, [System.IO.Pipes.PipeDirection]::InOut)
    $pipe.Connect(10000)
    $utf8 = New-Object System.Text.UTF8Encoding($false)
    $writer = New-Object System.IO.StreamWriter($pipe, $utf8) -Property @{ AutoFlush = $true; NewLine = "`n" }
    $script:Sidecar = @{ Process = $process; Pipe = $pipe; Writer = $writer; Reader = (New-Object System.IO.StreamReader($pipe, $utf8)); NextId = 0; Log = $log; Pending = $null }
    $init = [ordered]@{ protocolVersion = 1; clientName = 'PhotoBulk'; clientVersion = '0.1.0' }
    $null = Invoke-PhotoBulkRpc -Method 'initialize' -Params $init
}

function Stop-PhotoBulkSidecar {
    # Closes the pipe and waits for the sidecar to exit (it exits when its last client leaves); -Kill does not wait long.
    param([switch]$Kill)
    $sidecar = $script:Sidecar
    $script:Sidecar = $null
    if (-not $sidecar) { return }
    try { $sidecar.Pipe.Dispose() } catch { Write-Verbose "closing the pipe: $_" }
    $wait = 10000
    if ($Kill) { $wait = 2000 }
    if (-not $sidecar.Process.WaitForExit($wait)) { try { $sidecar.Process.Kill() } catch { Write-Verbose "stopping the sidecar: $_" } }
}
