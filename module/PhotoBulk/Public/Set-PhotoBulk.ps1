function Set-PhotoBulk {
    <#
    .SYNOPSIS
    Puts contact photos into AD thumbnailPhoto and/or the Exchange on-premises HD photo, in bulk, with backups.
    .DESCRIPTION
    Each image is converted by the photobulk sidecar (EXIF orientation applied, square crop, 96x96 JPEG of at most
    10,240 bytes for AD so Entra Connect passes it on; 648x648 for Exchange), the user's current AD photo is backed
    up, then replaced. A user whose AD photo already has exactly these bytes is left alone (Unchanged) unless -Force.
    Without -Identity, a file's name says whose photo it is: the account up to the first space ('John.Smith 2024.jpg').
    -WhatIf shows the plan; -Confirm asks per user. One PhotoBulk.Result per input; failures are non-terminating
    errors (ErrorId PhotoBulk.<kind>) and the batch goes on. For ExchangeOnPrem the session's own Set-UserPhoto is
    called with the prepared 648x648 JPEG. The credential travels only through the sidecar's pipe.
    .PARAMETER Path
    Image files or folders of images. Binds FullName from Get-ChildItem and Path from Import-Csv.
    .PARAMETER Identity
    The user (sAMAccountName by default, see -MatchBy). Binds SamAccountName / UserPrincipalName from Get-ADUser or a CSV.
    .PARAMETER Target
    ActiveDirectory (thumbnailPhoto, written by the sidecar) and/or ExchangeOnPrem (Set-UserPhoto in this session).
    .PARAMETER Force
    Write even when the stored photo is unchanged, and do not ask for confirmation.
    .PARAMETER ThrottleLimit
    Photos converted at once (0: one per core). Sent to the sidecar; the current sidecar converts one at a time.
    .EXAMPLE
    Get-ChildItem \\files\hr\photos -Filter *.jpg | Set-PhotoBulk -Server dc1.corp.example -Credential (Get-Credential) -BackupPath D:\PhotoBackups
    .EXAMPLE
    Import-Csv photos.csv | Set-PhotoBulk -Server dc1 -Credential $cred -WhatIf
    CSV columns Identity,Path. Prints what would be written, writes nothing.
    .EXAMPLE
    Get-ADUser -Filter "Department -eq 'Sales'" | ForEach-Object { [pscustomobject]@{ SamAccountName = $_.SamAccountName; Path = "P:\$($_.SamAccountName).jpg" } } | Set-PhotoBulk -Server dc1 -Credential $cred -Target ActiveDirectory, ExchangeOnPrem -Crop Top
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    [OutputType('PhotoBulk.Result')]
    param(
        [Parameter(Mandatory = $true, Position = 0, ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [Alias('FullName')]
        [string[]]$Path,
        [Parameter(ValueFromPipelineByPropertyName = $true)]
        [Alias('SamAccountName', 'UserPrincipalName')]
        [string]$Identity,
        [ValidateSet('SamAccountName', 'UserPrincipalName', 'Mail', 'EmployeeId')]
        [string]$MatchBy = 'SamAccountName',
        [ValidateSet('ActiveDirectory', 'ExchangeOnPrem')]
        [string[]]$Target = @('ActiveDirectory'),
        [string]$Server,
        [string]$SearchBase,
        [System.Management.Automation.PSCredential]
        [System.Management.Automation.Credential()]
        $Credential = [System.Management.Automation.PSCredential]::Empty,
        [string]$CaFile,
        [ValidateSet('Center', 'Top', 'Pad')]
        [string]$Crop = 'Center',
        [string]$BackupPath,
        [switch]$Force,
        [ValidateRange(0, 64)]
        [int]$ThrottleLimit = 0
    )
    begin {
        $inputs = New-Object System.Collections.Generic.List[object]
        if ($Force -and -not $PSBoundParameters.ContainsKey('Confirm')) { $ConfirmPreference = 'None' }
    }
    process {
        foreach ($p in $Path) {
            $entry = [ordered]@{ path = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($p) }
            if ($Identity) { $entry.identity = $Identity }
            $inputs.Add($entry)
        }
    }
    end {
        if ($inputs.Count -eq 0) { return }
        $exchange = $Target -contains 'ExchangeOnPrem'
        if ($exchange -and -not (Get-Command -Name 'Set-UserPhoto' -ErrorAction SilentlyContinue)) {
            throw 'Target ExchangeOnPrem needs Set-UserPhoto in this session (Exchange Management Shell or an imported Exchange session)'
        }
        if ($Target -contains 'ActiveDirectory') {
            $connect = ConvertTo-PhotoBulkConnect -Server $Server -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile -BackupPath $BackupPath
            $null = Invoke-PhotoBulkRpc -Method 'directory.connect' -Params $connect
        }
        $params = [ordered]@{
            items = $inputs.ToArray(); matchBy = $MatchBy.ToLowerInvariant(); targets = @($Target)
            crop = $Crop.ToLowerInvariant(); force = [bool]$Force; throttleLimit = $ThrottleLimit
        }
        $textInfo = [System.Globalization.CultureInfo]::InvariantCulture.TextInfo
        $newResult = {
            param($item)
            [PSCustomObject]@{
                PSTypeName = 'PhotoBulk.Result'; Identity = $item.identity; Status = $textInfo.ToTitleCase([string]$item.status)
                Path = $item.path; DistinguishedName = $item.dn; Bytes = $item.adBytes; BackupId = $item.backupId
                HdPath = $item.hdPath; Error = $(if ($item.error) { $item.error.message } else { $null })
            }
        }
        $plan = Invoke-PhotoBulkRpc -Method 'bulk.plan' -Params $params
        $approved = New-Object System.Collections.Generic.List[object]
        foreach ($item in @($plan.items)) {
            if ($item.status -ne 'ready') {
                $result = & $newResult $item
                if ($item.error) { Write-PhotoBulkItemError -ItemError $item.error -Target $result }
                $result
                continue
            }
            $who = $item.identity
            if ($item.dn) { $who = $item.dn }
            if ($PSCmdlet.ShouldProcess($who, "Set photo from '$($item.path)' ($($Target -join ', '))")) {
                $approved.Add([ordered]@{ path = $item.path; identity = $item.identity })
            }
        }
        if ($approved.Count -eq 0) { return }
        $params.items = $approved.ToArray()
        $onNotification = {
            param($method, $note)
            if ($method -eq 'bulk/progress') {
                $percent = [int](100 * $note.done / [math]::Max(1, $note.total))
                Write-Progress -Activity 'PhotoBulk' -Status "$($note.done) of $($note.total): $($note.current)" -PercentComplete $percent
            }
            elseif ($method -eq 'bulk/item') {
                $item = $note.item
                $result = & $newResult $item
                if ($exchange -and $item.hdPath -and -not $item.error) {
                    try {
                        Set-UserPhoto -Identity $item.identity -PictureData ([System.IO.File]::ReadAllBytes($item.hdPath)) -Confirm:$false -ErrorAction Stop
                        $result.Status = 'Written'
                    }
                    catch {
                        $result.Status = 'Failed'
                        $result.Error = "Set-UserPhoto: $($_.Exception.Message)"
                        Write-Error -Message $result.Error -Category WriteError -ErrorId 'PhotoBulk.exchange' -TargetObject $result
                    }
                }
                elseif ($item.error) {
                    Write-PhotoBulkItemError -ItemError $item.error -Target $result
                }
                $result
            }
        }
        $summary = $null
        Invoke-PhotoBulkRpc -Method 'bulk.run' -Params $params -OnNotification $onNotification | ForEach-Object {
            if ($_.PSObject.TypeNames -contains 'PhotoBulk.Result') { $_ } else { $summary = $_ }
        }
        Write-Progress -Activity 'PhotoBulk' -Completed
        if ($summary) { Write-Verbose "journal: $($summary.journal)" }
    }
}
