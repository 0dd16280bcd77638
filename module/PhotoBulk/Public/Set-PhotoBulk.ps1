function Set-PhotoBulk {
    <#
    .SYNOPSIS
    Puts contact photos into AD thumbnailPhoto, the Exchange on-premises HD photo and/or Exchange Online, in bulk, with backups.
    .DESCRIPTION
    The photobulk sidecar converts each image (EXIF orientation, square crop; 96x96 <= 10,240 bytes for AD so Entra Connect
    passes it on; 648x648 for Exchange) and backs up the current photo before replacing it. A user whose photo already has
    these bytes (AD: read back; Exchange: the journal) is Unchanged unless -Force. Without -Identity the file name up to the
    first space names the account ('John.Smith 2024.jpg'). -WhatIf shows the plan and creates nothing; -Confirm asks per user
    and target. One PhotoBulk.Result per input and target; failures are non-terminating errors (ErrorId PhotoBulk.<kind>,
    the result as TargetObject), and the batch goes on. Targets are written in this order: ExchangeOnPrem (this session's
    Set-UserPhoto, which also puts Exchange's own 64x64 copy into thumbnailPhoto), ExchangeOnline (Microsoft Graph), then
    ActiveDirectory, so the AD photo that stays is PhotoBulk's 96x96. Stopping the pipeline (Ctrl+C, Select-Object -First)
    stops the run between users. Secrets and tokens travel only through the sidecar's pipe.
    .PARAMETER Path
    Image files or folders of images. Binds FullName from Get-ChildItem and Path from Import-Csv.
    .PARAMETER Identity
    The user (sAMAccountName by default, see -MatchBy; for ExchangeOnline a UPN, mail, alias or object id).
    .PARAMETER Target
    ActiveDirectory (thumbnailPhoto), ExchangeOnPrem (Set-UserPhoto in this session), ExchangeOnline (Microsoft Graph).
    .PARAMETER BackupPath
    Backups of replaced photos (cloud photos under BackupPath\graph) and the run journal (journal.jsonl). Relative to the current location.
    .PARAMETER Force
    Rewrite photos that are already stored with the same bytes. (Prompts are switched off with -Confirm:$false.)
    .PARAMETER Crop
    How a photo becomes square: Face (the default: head and shoulders around the main face, like an ID photo; when no face is found, as Top, with a no_face warning), Center (what Exchange does), Top (portraits: keep the top), Pad (letterbox).
    .PARAMETER MatchBy
    Which AD attribute -Identity or the file name names: SamAccountName (default), UserPrincipalName, Mail or EmployeeId.
    .PARAMETER Server
    A domain controller (host name, or an ldaps:// / ldap:// URL). With none, one is found in DNS (SRV _ldap._tcp.dc._msdcs of -Domain).
    .PARAMETER Domain
    The AD DNS domain whose domain controllers are looked up when -Server is absent (default: USERDNSDOMAIN, the Kerberos ticket's realm).
    .PARAMETER DnsServer
    Ask this DNS server (IP or IP:PORT) for the domain controllers instead of the system's resolver.
    .PARAMETER Credential
    The account that writes thumbnailPhoto. Its password goes only through the sidecar's pipe. With none, the sidecar signs in as you (Kerberos: your Windows logon, or a kinit ticket on Linux/macOS), as Set-ADUser does.
    .PARAMETER CaFile
    A PEM file with the CA that issued the domain controller's certificate, when the system store does not have it.
    .PARAMETER SearchBase
    Where users are looked up (the domain's naming context by default).
    .PARAMETER GraphUrl
    ExchangeOnline: the Graph root including the version, for proxies and test emulators.
    .PARAMETER GraphAuthorityUrl
    ExchangeOnline: the sign-in authority (the token endpoint's root), for proxies and test emulators.
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
    Get-ChildItem \\files\hr\photos -Filter *.jpg | Set-PhotoBulk -BackupPath D:\PhotoBackups

    As Set-ADUser does: signed in as you (Kerberos), a domain controller of your domain found in DNS.
    .EXAMPLE
    Get-ChildItem \\files\hr\photos -Filter *.jpg | Set-PhotoBulk -Server dc1.corp.example -Credential (Get-Credential) -BackupPath D:\PhotoBackups

    A named DC and a simple bind with a password (over LDAPS).
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

    Exchange first (Set-UserPhoto with the 648x648 photo), then AD thumbnailPhoto (96x96), so Exchange's 64x64 copy does not stay.
    .EXAMPLE
    Get-ChildItem P:\photos | Set-PhotoBulk -Server dc1 -Credential $cred -ErrorVariable failed | Format-Table
    $failed | ForEach-Object { $_.TargetObject.Identity, $_.FullyQualifiedErrorId }

    One result per user as a table; the failures collected with their result objects.
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
        [string]$Server, [string]$Domain, [string]$DnsServer, [string]$SearchBase,
        [System.Management.Automation.PSCredential][System.Management.Automation.Credential()]$Credential = [System.Management.Automation.PSCredential]::Empty,
        [string]$CaFile,
        [string]$TenantId, [pscredential]$ClientCredential, [string]$CertificatePath, [securestring]$AccessToken,
        [ValidateSet('Global', 'USGov', 'USGovDoD', 'China')][string]$GraphEnvironment = 'Global',
        [string]$GraphUrl, [string]$GraphAuthorityUrl,
        [ValidateSet('Face', 'Center', 'Top', 'Pad')][string]$Crop = 'Face',
        [string]$BackupPath, [switch]$Force,
        [ValidateRange(0, 64)][int]$ThrottleLimit = 0
    )
    begin { $inputs = New-Object System.Collections.Generic.List[object] }
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
        if ($Target -contains 'ExchangeOnPrem' -and -not (Get-Command -Name 'Set-UserPhoto' -ErrorAction SilentlyContinue)) {
            throw 'Target ExchangeOnPrem needs Set-UserPhoto in this session (Exchange Management Shell or an imported Exchange session)'
        }
        if ($UseExistingHd -or $Target -contains 'ActiveDirectory') {
            Connect-PhotoBulkDirectory -Cmdlet $PSCmdlet -Server $Server -Domain $Domain -DnsServer $DnsServer -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile -BackupPath $BackupPath
        }
        if ($UseExistingHd -or $Target -contains 'ExchangeOnline') {
            Connect-PhotoBulkGraph -Cmdlet $PSCmdlet -TenantId $TenantId -ClientCredential $ClientCredential -CertificatePath $CertificatePath -AccessToken $AccessToken -Environment $GraphEnvironment -GraphUrl $GraphUrl -AuthorityUrl $GraphAuthorityUrl -BackupPath $BackupPath
        }
        $cmdlet = $PSCmdlet
        $params = @{ matchBy = $MatchBy.ToLowerInvariant(); crop = $Crop.ToLowerInvariant(); force = [bool]$Force; throttleLimit = $ThrottleLimit }
        if ($BackupPath) { $params.journal = Join-Path $PSCmdlet.GetUnresolvedProviderPathFromPSPath($BackupPath) 'journal.jsonl' }
        $onItem = {
            # A finished (or, in the plan, refused) item: its result, and its error when it has one.
            param($item)
            $result = New-PhotoBulkResult -Item $item
            if ($item.PSObject.Properties['error'] -and $item.error) { Write-PhotoBulkItemError -Cmdlet $cmdlet -ItemError $item.error -Target $result }
            $result
        }
        if ($UseExistingHd) {
            # One confirmation for the batch; -WhatIf runs the sync as a dry run (status WouldWrite per user).
            $scope = $(if ($inputs.Count) { "$($inputs.Count) user(s)" } else { "all users under '$SearchBase'" })
            $sync = [ordered]@{ identities = $inputs.ToArray(); matchBy = $params.matchBy; crop = $params.crop; force = [bool]$Force; dryRun = -not $PSCmdlet.ShouldProcess($scope, 'Write the cloud HD photo to AD thumbnailPhoto') }
            $onSync = {
                param($method, $note)
                if ($method -ne 'syncHd/item') { return }
                $i = $note.item
                $shaped = [pscustomobject]@{ identity = $i.identity; target = 'ActiveDirectory'; status = $i.status; dn = $i.dn; userPrincipalName = $i.cloudUser; adBytes = $i.writtenBytes; backupId = $i.backupId; error = $null }
                if ($i.PSObject.Properties['error'] -and $i.error -and $i.status -eq 'failed') { $shaped.error = $i.error }
                & $onItem $shaped
            }
            Invoke-PhotoBulkRpc -Method 'photo.syncHdToAd' -Params $sync -OnNotification $onSync | Where-Object { $_.PSObject.TypeNames -contains 'PhotoBulk.Result' }
            return
        }
        # The plan, streamed (any number of photos); one ShouldProcess per user and target. -WhatIf stops here.
        $approved = @{ ActiveDirectory = (New-Object System.Collections.Generic.List[object]); ExchangeOnPrem = (New-Object System.Collections.Generic.List[object]); ExchangeOnline = (New-Object System.Collections.Generic.List[object]) }
        $onPlan = {
            param($method, $note)
            if ($method -ne 'bulk/item') { return }
            $item = $note.item
            if ($item.status -ne 'ready') { & $onItem $item; return }
            $who = $item.identity
            if ($item.PSObject.Properties['dn'] -and $item.dn) { $who = $item.dn }
            if ($cmdlet.ShouldProcess($who, "Set the $($item.target) photo from '$($item.path)'")) {
                $approved[$item.target].Add([ordered]@{ path = $item.path; identity = $item.identity })
            }
        }
        $plan = $params + @{ items = $inputs.ToArray(); targets = @($Target); streamItems = $true }
        Invoke-PhotoBulkRpc -Method 'bulk.plan' -Params $plan -OnNotification $onPlan | Where-Object { $_.PSObject.TypeNames -contains 'PhotoBulk.Result' }
        foreach ($t in @('ExchangeOnPrem', 'ExchangeOnline', 'ActiveDirectory')) {
            if ($approved[$t].Count -eq 0) { continue }
            $recorded = New-Object System.Collections.Generic.List[object]
            $onRun = {
                param($method, $note)
                if ($method -eq 'bulk/progress') {
                    $percent = [int](100 * $note.done / [math]::Max(1, $note.total))
                    Write-Progress -Activity "PhotoBulk: $t" -Status "$($note.done) of $($note.total): $($note.current)" -PercentComplete $percent
                    return
                }
                if ($method -ne 'bulk/item') { return }
                $item = $note.item
                if ($t -eq 'ExchangeOnPrem' -and $item.status -eq 'ready') {
                    # The sidecar prepared and journaled the 648x648 JPEG; this session's Exchange writes it.
                    $outcome = [ordered]@{ identity = $item.identity; hdSha256 = $item.hdSha256; status = 'written' }
                    try {
                        Set-UserPhoto -Identity $item.identity -PictureData ([System.IO.File]::ReadAllBytes($item.hdPath)) -Confirm:$false -ErrorAction Stop
                        $item.status = 'written'
                    }
                    catch {
                        $outcome.status = 'failed'; $outcome.message = "Set-UserPhoto: $($_.Exception.Message)"
                        $item.status = 'failed'
                        $item | Add-Member -NotePropertyName error -NotePropertyValue @{ kind = 'exchange'; message = $outcome.message } -Force
                    }
                    $recorded.Add($outcome)
                }
                & $onItem $item
            }
            $run = $params + @{ items = $approved[$t].ToArray(); targets = @($t) }
            $summary = $null
            try {
                Invoke-PhotoBulkRpc -Method 'bulk.run' -Params $run -OnNotification $onRun | ForEach-Object {
                    if ($_.PSObject.TypeNames -contains 'PhotoBulk.Result') { $_ } else { $summary = $_ }
                }
            }
            finally {
                Write-Progress -Activity "PhotoBulk: $t" -Completed
                # What this session's Set-UserPhoto did goes into the run's journal, also when the run was stopped.
                if ($t -eq 'ExchangeOnPrem' -and $params.Contains('journal')) { $journal = $params.journal } elseif ($summary) { $journal = $summary.journal } else { $journal = $null }
                if ($t -eq 'ExchangeOnPrem' -and $journal) {
                    $null = Invoke-PhotoBulkRpc -Method 'bulk.record' -Params ([ordered]@{ journal = $journal; items = $recorded.ToArray(); end = $true })
                }
            }
            if ($summary) { Write-Verbose "$t journal: $($summary.journal)" }
        }
    }
}
