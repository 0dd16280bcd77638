function Set-PhotoBulk {
    <#
    .SYNOPSIS
    Puts contact photos into AD thumbnailPhoto, the Exchange on-premises HD photo and/or Exchange Online, in bulk, with backups.
    .DESCRIPTION
    The photobulk sidecar converts each image (EXIF orientation, square crop; 96x96 <= 10,240 bytes for AD so Entra Connect
    passes it on; 648x648 for Exchange) and backs up the current photo before replacing it. A user whose photo already has
    these bytes (AD: read back; Exchange: the journal) is Unchanged unless -Force. Without -Identity the file name up to the
    first space names the account ('John.Smith 2024.jpg'). -WhatIf shows the plan; -Confirm asks per user. One PhotoBulk.Result
    per input and target; failures are non-terminating errors (ErrorId PhotoBulk.<kind>). ExchangeOnPrem calls this session's
    Set-UserPhoto; ExchangeOnline uploads through Microsoft Graph. Secrets and tokens travel only through the sidecar's pipe.
    .PARAMETER Path
    Image files or folders of images. Binds FullName from Get-ChildItem and Path from Import-Csv.
    .PARAMETER Identity
    The user (sAMAccountName by default, see -MatchBy; for ExchangeOnline a UPN, mail, alias or object id).
    .PARAMETER Target
    ActiveDirectory (thumbnailPhoto), ExchangeOnPrem (Set-UserPhoto in this session), ExchangeOnline (Microsoft Graph).
    .PARAMETER BackupPath
    Backups of replaced photos (cloud photos under BackupPath\graph) and the run journal (journal.jsonl).
    .PARAMETER TenantId
    ExchangeOnline: the tenant id or domain, with -ClientCredential.
    .PARAMETER ClientCredential
    ExchangeOnline: user name = the app's client id, password = its client secret (needs ProfilePhoto.ReadWrite.All).
    .PARAMETER CertificatePath
    ExchangeOnline: a PEM file with the app's certificate and RSA key, used instead of the client secret.
    .PARAMETER AccessToken
    ExchangeOnline: a Graph access token you already have (it cannot be refreshed: long runs need app credentials).
    .PARAMETER GraphEnvironment
    ExchangeOnline: Global (default), USGov, USGovDoD or China. -GraphUrl overrides the Graph root (tests, proxies).
    .PARAMETER UseExistingHd
    Instead of files: each user's existing cloud HD photo (Microsoft Graph) written to AD thumbnailPhoto as 96x96 <= 10,240 bytes, with backups. Needs -Server/-Credential and the ExchangeOnline sign-in parameters; users from -Identity, else all under -SearchBase. -WhatIf reports WouldWrite per user.
    .PARAMETER ThrottleLimit
    Photos converted at once (0: one per core).
    .EXAMPLE
    Get-ChildItem \\files\hr\photos -Filter *.jpg | Set-PhotoBulk -Server dc1.corp.example -Credential (Get-Credential) -BackupPath D:\PhotoBackups
    .EXAMPLE
    Import-Csv photos.csv | Set-PhotoBulk -Server dc1 -Credential $cred -WhatIf
    CSV columns Identity,Path. Prints what would be written, writes nothing.
    .EXAMPLE
    Set-PhotoBulk -Path P:\photos -Target ExchangeOnline -TenantId contoso.onmicrosoft.com -ClientCredential (Get-Credential -UserName $appId -Message 'client secret') -BackupPath D:\PhotoBackups
    .EXAMPLE
    Set-PhotoBulk -Path P:\photos -Target ExchangeOnline -AccessToken (Get-AzAccessToken -ResourceTypeName MSGraph -AsSecureString).Token -BackupPath D:\PhotoBackups
    .EXAMPLE
    Get-ADUser -Filter * -SearchBase 'OU=Staff,DC=corp,DC=example' | Set-PhotoBulk -UseExistingHd -Server dc1 -Credential $cred -TenantId contoso.onmicrosoft.com -ClientCredential $app -BackupPath D:\PhotoBackups -WhatIf
    Shows, per user, whether the photo already in Exchange Online would be copied to AD (add -Confirm:$false to write).
    .EXAMPLE
    Get-ChildItem P:\photos | Set-PhotoBulk -Target ActiveDirectory, ExchangeOnPrem -Server dc1 -Credential $cred -BackupPath D:\PhotoBackups -Crop Top
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium', DefaultParameterSetName = 'Path')]
    [OutputType('PhotoBulk.Result')]
    param(
        [Parameter(Mandatory = $true, ParameterSetName = 'Path', Position = 0, ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [Alias('FullName')][string[]]$Path,
        [Parameter(Mandatory = $true, ParameterSetName = 'UseExistingHd')][switch]$UseExistingHd,
        [Parameter(ValueFromPipelineByPropertyName = $true)]
        [Alias('SamAccountName', 'UserPrincipalName')][string]$Identity,
        [ValidateSet('SamAccountName', 'UserPrincipalName', 'Mail', 'EmployeeId')][string]$MatchBy = 'SamAccountName',
        [ValidateSet('ActiveDirectory', 'ExchangeOnPrem', 'ExchangeOnline')][string[]]$Target = @('ActiveDirectory'),
        [string]$Server, [string]$SearchBase,
        [System.Management.Automation.PSCredential][System.Management.Automation.Credential()]$Credential = [System.Management.Automation.PSCredential]::Empty,
        [string]$CaFile,
        [string]$TenantId, [pscredential]$ClientCredential, [string]$CertificatePath, [securestring]$AccessToken,
        [ValidateSet('Global', 'USGov', 'USGovDoD', 'China')][string]$GraphEnvironment = 'Global',
        [string]$GraphUrl,
        [ValidateSet('Center', 'Top', 'Pad')][string]$Crop = 'Center',
        [string]$BackupPath, [switch]$Force,
        [ValidateRange(0, 64)][int]$ThrottleLimit = 0
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
        if ($UseExistingHd -and $Identity) { $inputs.Add($Identity) }
    }
    end {
        if ($inputs.Count -eq 0 -and -not $UseExistingHd) { return }
        $exchange = $Target -contains 'ExchangeOnPrem'
        if ($exchange -and -not (Get-Command -Name 'Set-UserPhoto' -ErrorAction SilentlyContinue)) {
            throw 'Target ExchangeOnPrem needs Set-UserPhoto in this session (Exchange Management Shell or an imported Exchange session)'
        }
        if ($UseExistingHd -or $Target -contains 'ActiveDirectory') {
            $connect = ConvertTo-PhotoBulkConnect -Server $Server -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile -BackupPath $BackupPath
            $null = Invoke-PhotoBulkRpc -Method 'directory.connect' -Params $connect
        }
        if ($UseExistingHd -or $Target -contains 'ExchangeOnline') {
            $graph = ConvertTo-PhotoBulkGraphConnect -TenantId $TenantId -ClientCredential $ClientCredential -CertificatePath $CertificatePath -AccessToken $AccessToken -Environment $GraphEnvironment -GraphUrl $GraphUrl -BackupPath $BackupPath
            $null = Invoke-PhotoBulkRpc -Method 'graph.connect' -Params $graph
        }
        $params = [ordered]@{
            items = $inputs.ToArray(); matchBy = $MatchBy.ToLowerInvariant(); targets = @($Target)
            crop = $Crop.ToLowerInvariant(); force = [bool]$Force; throttleLimit = $ThrottleLimit
        }
        if ($BackupPath) { $params.journal = Join-Path $BackupPath 'journal.jsonl' }
        $textInfo = [System.Globalization.CultureInfo]::InvariantCulture.TextInfo
        $newResult = {
            param($item)
            [PSCustomObject]@{
                PSTypeName = 'PhotoBulk.Result'; Identity = $item.identity; Target = $item.target; Status = $textInfo.ToTitleCase(([string]$item.status).Replace('_', ' ')).Replace(' ', '')
                Path = $item.path; DistinguishedName = $item.dn; UserPrincipalName = $item.userPrincipalName; Bytes = $item.adBytes
                BackupId = $item.backupId; HdPath = $item.hdPath; Error = $(if ($item.error) { $item.error.message } else { $null })
            }
        }
        if ($UseExistingHd) {
            # One confirmation for the batch; -WhatIf runs the sync as a dry run (status WouldWrite per user).
            $scope = $(if ($inputs.Count) { "$($inputs.Count) user(s)" } else { "all users under '$SearchBase'" })
            $sync = [ordered]@{ identities = $inputs.ToArray(); matchBy = $params.matchBy; crop = $params.crop; force = [bool]$Force; dryRun = -not $PSCmdlet.ShouldProcess($scope, 'Write the cloud HD photo to AD thumbnailPhoto') }
            $onItem = {
                param($method, $note)
                if ($method -ne 'syncHd/item') { return }
                $i = $note.item
                $result = & $newResult ([pscustomobject]@{ identity = $i.identity; target = 'ActiveDirectory'; status = $i.status; dn = $i.dn; userPrincipalName = $i.cloudUser; adBytes = $i.writtenBytes; backupId = $i.backupId; error = $i.error })
                if ($i.error -and $i.status -eq 'failed') { Write-PhotoBulkItemError -ItemError $i.error -Target $result }
                $result
            }
            Invoke-PhotoBulkRpc -Method 'photo.syncHdToAd' -Params $sync -OnNotification $onItem | Where-Object { $_.PSObject.TypeNames -contains 'PhotoBulk.Result' }
            return
        }
        $plan = Invoke-PhotoBulkRpc -Method 'bulk.plan' -Params $params
        if ($plan.environment) { Write-Verbose "Environment: $($plan.environment.environment)" }
        $approved = [ordered]@{}
        foreach ($item in @($plan.items)) {
            if ($item.status -ne 'ready') {
                $result = & $newResult $item
                if ($item.error) { Write-PhotoBulkItemError -ItemError $item.error -Target $result }
                $result
                continue
            }
            $who = $item.identity
            if ($item.dn) { $who = $item.dn }
            if (-not $approved.Contains($item.path) -and $PSCmdlet.ShouldProcess($who, "Set photo from '$($item.path)' ($($Target -join ', '))")) {
                $approved[$item.path] = [ordered]@{ path = $item.path; identity = $item.identity }
            }
        }
        if ($approved.Count -eq 0) { return }
        $params.items = @($approved.Values)
        $recorded = New-Object System.Collections.Generic.List[object]
        $onNotification = {
            param($method, $note)
            if ($method -eq 'bulk/progress') {
                $percent = [int](100 * $note.done / [math]::Max(1, $note.total))
                Write-Progress -Activity 'PhotoBulk' -Status "$($note.done) of $($note.total): $($note.current)" -PercentComplete $percent
            }
            elseif ($method -eq 'bulk/item') {
                $item = $note.item
                $result = & $newResult $item
                if ($item.target -eq 'ExchangeOnPrem' -and $item.status -eq 'ready') {
                    $outcome = [ordered]@{ identity = $item.identity; hdSha256 = $item.hdSha256; status = 'written' }
                    try {
                        Set-UserPhoto -Identity $item.identity -PictureData ([System.IO.File]::ReadAllBytes($item.hdPath)) -Confirm:$false -ErrorAction Stop
                        $result.Status = 'Written'
                    }
                    catch {
                        $result.Status = 'Failed'
                        $result.Error = "Set-UserPhoto: $($_.Exception.Message)"
                        $outcome.status = 'failed'
                        $outcome.message = $result.Error
                        Write-Error -Message $result.Error -Category WriteError -ErrorId 'PhotoBulk.exchange' -TargetObject $result
                    }
                    $recorded.Add($outcome)
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
        if ($exchange -and $summary) {
            $null = Invoke-PhotoBulkRpc -Method 'bulk.record' -Params ([ordered]@{ journal = $summary.journal; items = $recorded.ToArray(); end = $true })
        }
        if ($summary) { Write-Verbose "journal: $($summary.journal)" }
    }
}
